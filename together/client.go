package together

import "net/http"

// DefaultBaseURL is Together's API root.
const DefaultBaseURL = "https://api.together.xyz/v1"

// BaseURL returns the API root a client made by [NewClient] was given (see
// [WithBaseURL]), or [DefaultBaseURL] for any other client.
func BaseURL(client *http.Client) string {
	if t, ok := clientTransport(client); ok && t.baseURL != "" {
		return t.baseURL
	}
	return DefaultBaseURL
}

func clientTransport(client *http.Client) (*Transport, bool) {
	if client == nil {
		return nil, false
	}
	t, ok := client.Transport.(*Transport)
	return t, ok
}

// catalogFor returns the client's cached catalog when it has one, else a
// fresh catalog good for one call.
func catalogFor(client *http.Client) *Catalog {
	if t, ok := clientTransport(client); ok {
		return t.catalog(client)
	}
	return NewCatalog(client, "", 0)
}
