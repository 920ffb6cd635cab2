package transport

// StatusOverloaded is the status Anthropic answers when a model is
// overloaded (529, "overloaded_error"): not in net/http, and retried,
// counted by breakers and fallen back from as 503 is.
const StatusOverloaded = 529
