// Package azsdk proves the ARM-compatible API with the real Azure SDK for Go
// (armcontainerregistry) and the real `registryhooks webhook` CLI, both
// driving the real server binary over loopback. It is a module of its own
// so the Azure SDK stays out of the application's go.mod.
//
// Run: cd e2e/azsdk && go test ./...
package azsdk
