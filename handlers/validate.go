package handlers

import (
	"context"
	"time"

	"github.com/registryhooks/registryhooks/models"
)

// validateWebhook runs the webhook rules every entry point shares (the
// portal form, the ARM API): models' field rules, then the SSRF guard on the
// service URI, so a target the dispatcher would refuse is refused up front
// with the guard's reason. It returns nil when the input is valid.
func (h *Handler) validateWebhook(ctx context.Context, in *models.WebhookInput) models.FieldErrors {
	fe := in.Validate()
	if fe["service_uri"] == "" && h.CheckTarget != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := h.CheckTarget(ctx, in.ServiceURI)
		cancel()
		if err != nil {
			if fe == nil {
				fe = models.FieldErrors{}
			}
			fe["service_uri"] = "Service URI " + err.Error()
		}
	}
	return fe
}
