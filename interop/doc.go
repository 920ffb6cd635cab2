// Package interop holds the tests that run the official provider SDKs
// (openai-go, go-openai, anthropic-sdk-go) over loopback through steady's
// decorators and presets, with the SDKs' own retries off. It is a module of
// its own, so that no user of steady inherits the SDKs.
package interop
