package redisbucket_test

const childEnv = "STEADY_REDISBUCKET_CHILD"

func runChild() int { return 0 }
