package handlers

import (
	"github.com/registryhooks/registryhooks/models"
	"github.com/registryhooks/registryhooks/views"
)

// autoDisabledVM is what the banner and the blade marker show of a webhook
// the system disabled: since when and why. Zero when it did not.
func autoDisabledVM(w *models.Webhook) views.AutoDisabledVM {
	since, ok := w.AutoDisabled()
	if !ok {
		return views.AutoDisabledVM{}
	}
	return views.AutoDisabledVM{Since: fmtTime(since), Reason: w.AutoDisabledReason}
}

// kickIfEnabled wakes the dispatcher after a webhook was enabled, so the
// deliveries held while it was auto-disabled go out at once rather than at
// the next poll.
func (h *Handler) kickIfEnabled(status string) {
	if status == models.StatusEnabled && h.Dispatcher != nil {
		h.Dispatcher.Kick()
	}
}
