package handlers

import (
	"fmt"
	"net/http"

	"github.com/registryhooks/registryhooks/models"
)

// deliveryOutcome says, on the event detail, where a delivery stands under
// the retry policy: when the next attempt goes out, or why it ended. The
// dispatcher records why a failed delivery ended in its last attempt's
// error ("refused by the receiver: 400 Bad Request", "…; gave up after 8
// attempts"); deliveries that failed before it did read "gave up after N
// attempts".
func deliveryOutcome(d *models.Delivery, action string) string {
	switch d.State {
	case models.DeliveryPending:
		if d.Attempts == 0 {
			return "Queued: the first attempt goes out as soon as a worker is free."
		}
		return fmt.Sprintf("Attempt %d failed; next attempt at %s.", d.Attempts, fmtNanos(d.AvailableAt))
	case models.DeliveryInFlight:
		return fmt.Sprintf("Sending attempt %d.", d.Attempts)
	case models.DeliverySucceeded:
		if d.Attempts > 1 {
			return fmt.Sprintf("Delivered at attempt %d.", d.Attempts)
		}
		return "Delivered."
	case models.DeliveryFailed:
		if action == models.ActionPing {
			return "Failed: a ping is sent once, as ACR's, and not retried."
		}
		if d.LastError != "" {
			return "Failed: " + d.LastError + "."
		}
		if d.LastStatusCode >= 400 && d.LastStatusCode < 500 && d.Attempts == 1 {
			return fmt.Sprintf("Failed: refused by the receiver: %d %s.", d.LastStatusCode, http.StatusText(d.LastStatusCode))
		}
		return fmt.Sprintf("Failed: gave up after %d attempts.", d.Attempts)
	}
	return ""
}
