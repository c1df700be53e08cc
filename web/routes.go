package web

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/registryhooks/registryhooks/handlers"
	"github.com/registryhooks/registryhooks/models"
)

// Body limits per family of endpoints (413 past them). echo reads "1M"
// as 1,000,000 bytes; "Mi" and "Ki" are the binary units the docs promise.
const (
	portalBodyLimit = "256KiB"
	armBodyLimit    = "1MiB"
)

// routes is the one route table of the server. metrics serves GET /metrics.
func routes(e *echo.Echo, h *handlers.Handler, metrics http.Handler) {
	// Machines: health, metrics (Prometheus; optional bearer token), static assets.
	e.GET("/healthz", h.Healthz)
	e.GET("/metrics", echo.WrapHandler(metrics))
	e.GET("/readyz", h.Readyz)
	e.GET("/static/*", staticHandler())
	e.GET("/favicon.ico", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/static/favicon.svg") })

	// Ingest: registries and scripts post events here (bearer ingest token).
	e.POST("/ingest/distribution/:registry", h.IngestDistribution)
	e.POST("/ingest/events/:registry", h.IngestEvent)

	// ARM-compatible API (bearer API token), at Azure's paths.
	arm := e.Group("/subscriptions", middleware.BodyLimit(armBodyLimit), h.ARMErrors(), h.ARMAPIVersion(), h.ARMAuth())
	arm.GET("/:sub/resources", h.ARMResourceList)
	arm.GET("/:sub/providers/Microsoft.ContainerRegistry/registries", h.ARMRegistryList)
	rg := arm.Group("/:sub/resourceGroups/:rg/providers/Microsoft.ContainerRegistry/registries")
	rg.GET("", h.ARMRegistryListByResourceGroup)
	rg.GET("/:registry", h.ARMRegistryGet)
	rg.PUT("/:registry", h.ARMRegistryCreate)
	rg.PATCH("/:registry", h.ARMRegistryUpdate)
	rg.DELETE("/:registry", h.ARMRegistryDelete)
	rg.GET("/:registry/listUsages", h.ARMRegistryListUsages)
	rg.GET("/:registry/webhooks", h.ARMWebhookList)
	rg.GET("/:registry/webhooks/:webhook", h.ARMWebhookGet)
	rg.PUT("/:registry/webhooks/:webhook", h.ARMWebhookCreate)
	rg.PATCH("/:registry/webhooks/:webhook", h.ARMWebhookUpdate)
	rg.DELETE("/:registry/webhooks/:webhook", h.ARMWebhookDelete)
	rg.POST("/:registry/webhooks/:webhook/ping", h.ARMWebhookPing)
	rg.POST("/:registry/webhooks/:webhook/getCallbackConfig", h.ARMWebhookCallbackConfig, h.NoStore())
	rg.POST("/:registry/webhooks/:webhook/listEvents", h.ARMWebhookListEvents)
	rg.GET("/:registry/webhooks/:webhook/listEvents", h.ARMWebhookListEvents)                            // nextLink pages
	rg.POST("/:registry/webhooks/:webhook/redeliver", h.ARMWebhookRedeliver)                             // extension: bulk redeliver
	rg.POST("/:registry/webhooks/:webhook/regenerateSigningSecret", h.ARMWebhookRegenerateSigningSecret) // extension

	// Portal: sessions, CSRF on every state-changing request. Middleware is
	// given per route (not with Group.Use) so unknown paths stay 404s.
	portal := []echo.MiddlewareFunc{middleware.BodyLimit(portalBodyLimit), h.LoadSession(), h.CSRF()}
	with := func(role string) []echo.MiddlewareFunc {
		return append(append([]echo.MiddlewareFunc{}, portal...), h.RequireRole(role))
	}
	// secret adds Cache-Control: no-store for pages that show secrets.
	secret := func(m []echo.MiddlewareFunc) []echo.MiddlewareFunc { return append(slices.Clip(m), h.NoStore()) }
	e.GET("/login", h.LoginForm, portal...)
	e.POST("/login", h.Login, portal...)
	e.POST("/logout", h.Logout, portal...)

	read := with(models.RoleReader)
	e.GET("/", h.Home, read...)
	e.GET("/switch", h.SwitchRegistry, read...)
	e.GET("/registries", h.RegistryList, secret(read)...)
	e.GET("/registries/:registry", func(c echo.Context) error {
		return c.Redirect(http.StatusSeeOther, "/registries/"+c.Param("registry")+"/webhooks")
	}, read...)
	e.GET("/registries/:registry/webhooks", h.WebhookList, read...)
	e.GET("/registries/:registry/webhooks/:webhook", h.WebhookShow, read...)
	e.GET("/registries/:registry/webhooks/:webhook/events", h.WebhookEvents, read...)
	e.GET("/registries/:registry/webhooks/:webhook/health", h.WebhookHealth, read...)
	e.GET("/registries/:registry/webhooks/:webhook/events/:delivery", h.WebhookEventDetail, read...)

	// Contributors manage and ping webhooks.
	contrib := with(models.RoleContributor)
	e.GET("/registries/:registry/webhooks/new", h.WebhookNew, contrib...)
	e.POST("/registries/:registry/validate-webhook", h.WebhookValidate, contrib...)
	e.POST("/registries/:registry/webhooks", h.WebhookCreate, contrib...)
	e.GET("/registries/:registry/webhooks/:webhook/edit", h.WebhookEdit, secret(contrib)...)
	e.GET("/registries/:registry/webhooks/:webhook/callback", h.WebhookCallback, secret(contrib)...)
	e.POST("/registries/:registry/webhooks/:webhook/validate", h.WebhookValidate, contrib...)
	e.POST("/registries/:registry/webhooks/:webhook", h.WebhookUpdate, contrib...)
	e.POST("/registries/:registry/webhooks/:webhook/status", h.WebhookStatus, contrib...)
	e.POST("/registries/:registry/webhooks/:webhook/ping", h.WebhookPing, contrib...)
	e.POST("/registries/:registry/webhooks/:webhook/events/:delivery/redeliver", h.WebhookRedeliver, contrib...)
	e.POST("/registries/:registry/webhooks/:webhook/redeliver", h.WebhookRedeliverFailed, contrib...)
	e.POST("/registries/:registry/webhooks/:webhook/signing-secret", h.WebhookRegenerateSigningSecret, contrib...)
	e.POST("/registries/:registry/webhooks/:webhook/delete", h.WebhookDelete, contrib...)

	// Admins manage registries, API tokens, users; read the audit trail.
	admin := with(models.RoleAdmin)
	e.POST("/registries", h.RegistryCreate, secret(admin)...)
	e.POST("/registries/:registry/ingest-token", h.RegistryRotateToken, secret(admin)...)
	e.POST("/registries/:registry/login-server", h.RegistrySetLoginServer, secret(admin)...)
	e.GET("/tokens", h.TokenList, secret(admin)...)
	e.POST("/tokens", h.TokenCreate, secret(admin)...)
	e.POST("/tokens/:id/revoke", h.TokenRevoke, admin...)
	e.GET("/users", h.UserList, admin...)
	e.POST("/users", h.UserCreate, admin...)
	e.POST("/users/:id/role", h.UserSetRole, admin...)
	e.POST("/users/:id/delete", h.UserDelete, admin...)
	e.GET("/audit", h.AuditList, admin...)
}
