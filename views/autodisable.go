package views

// AutoDisabledVM says why and since when the system disabled a webhook. The
// zero value (Since empty) means it did not, and renders nothing.
type AutoDisabledVM struct {
	// Since is when, formatted for people (UTC).
	Since string
	// Reason is the rule's account: the window, the failures, the last one.
	Reason string
	// Held counts the deliveries waiting for the webhook to be enabled
	// again; the webhook page fills it, the blade does not.
	Held int64
}
