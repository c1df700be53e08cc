package azsdk

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry"
)

func webhookParams(uri string, actions ...armcontainerregistry.WebhookAction) armcontainerregistry.WebhookCreateParameters {
	acts := make([]*armcontainerregistry.WebhookAction, len(actions))
	for i := range actions {
		acts[i] = &actions[i]
	}
	return armcontainerregistry.WebhookCreateParameters{
		Location: ptr("local"),
		Tags:     map[string]*string{"team": ptr("a")},
		Properties: &armcontainerregistry.WebhookPropertiesCreateParameters{
			ServiceURI:    ptr(uri),
			CustomHeaders: map[string]*string{"Authorization": ptr("Basic c2VjcmV0")},
			Scope:         ptr("app:*"),
			Actions:       acts,
		},
	}
}

func createWebhook(t *testing.T, hooks *armcontainerregistry.WebhooksClient, rg, reg, name string) armcontainerregistry.Webhook {
	t.Helper()
	ctx := ctxT(t)
	p, err := hooks.BeginCreate(ctx, rg, reg, name, webhookParams(env.receiver+"/"+name, armcontainerregistry.WebhookActionPush), nil)
	if err != nil {
		t.Fatalf("create webhook %s: %v", name, err)
	}
	res, err := p.PollUntilDone(ctx, pollFast)
	if err != nil {
		t.Fatalf("create webhook %s: %v", name, err)
	}
	return res.Webhook
}

func TestRegistries(t *testing.T) {
	t.Parallel()
	regs, _ := clients(t, apiToken)
	ctx := ctxT(t)
	createRegistry(t, regs, "sdk-regs", "sdkregone", armcontainerregistry.SKUNameStandard)
	createRegistry(t, regs, "sdk-regs", "sdkregtwo", armcontainerregistry.SKUNameBasic)

	got, err := regs.Get(ctx, "sdk-regs", "sdkregone", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantID := "/subscriptions/" + subscription + "/resourceGroups/sdk-regs/providers/Microsoft.ContainerRegistry/registries/sdkregone"
	if *got.ID != wantID || *got.Type != "Microsoft.ContainerRegistry/registries" || *got.Location != "local" ||
		*got.SKU.Tier != armcontainerregistry.SKUTierStandard || *got.Tags["owner"] != "e2e" || got.Properties.LoginServer == nil || got.Properties.CreationDate == nil {
		t.Fatalf("get registry: %+v %+v", got.Registry, got.Properties)
	}

	var inGroup []string
	pager := regs.NewListByResourceGroupPager("sdk-regs", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Value {
			inGroup = append(inGroup, *r.Name)
		}
	}
	slices.Sort(inGroup)
	if strings.Join(inGroup, ",") != "sdkregone,sdkregtwo" {
		t.Fatalf("list by resource group: %v", inGroup)
	}
	var inSub []string
	subPager := regs.NewListPager(nil)
	for subPager.More() {
		page, err := subPager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Value {
			inSub = append(inSub, *r.Name)
		}
	}
	if !slices.Contains(inSub, "myregistry") || !slices.Contains(inSub, "sdkregone") {
		t.Fatalf("list by subscription: %v", inSub)
	}

	up, err := regs.BeginUpdate(ctx, "sdk-regs", "sdkregone", armcontainerregistry.RegistryUpdateParameters{
		SKU: &armcontainerregistry.SKU{Name: ptr(armcontainerregistry.SKUNamePremium)}, Tags: map[string]*string{"owner": ptr("e2e"), "stage": ptr("2")},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := up.PollUntilDone(ctx, pollFast)
	if err != nil || *upd.SKU.Name != armcontainerregistry.SKUNamePremium || *upd.Tags["stage"] != "2" {
		t.Fatalf("update registry: %+v, %v", upd.Registry, err)
	}

	usages, err := regs.ListUsages(ctx, "sdk-regs", "sdkregone", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(usages.Value) != 1 || *usages.Value[0].Name != "Webhooks" || *usages.Value[0].Limit != 500 || *usages.Value[0].CurrentValue != 0 || *usages.Value[0].Unit != armcontainerregistry.RegistryUsageUnitCount {
		t.Fatalf("usages: %+v", usages.Value[0])
	}

	del, err := regs.BeginDelete(ctx, "sdk-regs", "sdkregtwo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, pollFast); err != nil {
		t.Fatal(err)
	}
	_, err = regs.Get(ctx, "sdk-regs", "sdkregtwo", nil)
	respErr(t, err, http.StatusNotFound, "ResourceNotFound")
	// A registry looked up under the wrong resource group is not found.
	_, err = regs.Get(ctx, "other-rg", "sdkregone", nil)
	respErr(t, err, http.StatusNotFound, "ResourceNotFound")
}

func TestWebhookLifecycle(t *testing.T) {
	t.Parallel()
	regs, hooks := clients(t, apiToken)
	ctx := ctxT(t)
	createRegistry(t, regs, "sdk-life", "sdklife", armcontainerregistry.SKUNameStandard)

	w := createWebhook(t, hooks, "sdk-life", "sdklife", "lifeHook")
	if *w.Name != "lifeHook" || *w.Location != "local" || *w.Properties.Status != armcontainerregistry.WebhookStatusEnabled ||
		*w.Properties.Scope != "app:*" || len(w.Properties.Actions) != 1 || *w.Properties.Actions[0] != armcontainerregistry.WebhookActionPush ||
		*w.Properties.ProvisioningState != armcontainerregistry.ProvisioningStateSucceeded || *w.Tags["team"] != "a" {
		t.Fatalf("created webhook: %+v %+v", w, w.Properties)
	}
	got, err := hooks.Get(ctx, "sdk-life", "sdklife", "lifeHook", nil)
	if err != nil || *got.ID != "/subscriptions/"+subscription+"/resourceGroups/sdk-life/providers/Microsoft.ContainerRegistry/registries/sdklife/webhooks/lifeHook" {
		t.Fatalf("get: %+v, %v", got.Webhook, err)
	}
	cfg, err := hooks.GetCallbackConfig(ctx, "sdk-life", "sdklife", "lifeHook", nil)
	if err != nil || *cfg.ServiceURI != env.receiver+"/lifeHook" || *cfg.CustomHeaders["Authorization"] != "Basic c2VjcmV0" {
		t.Fatalf("callback config: %+v, %v", cfg.CallbackConfig, err)
	}

	// PATCH only the status: the rest stays.
	up, err := hooks.BeginUpdate(ctx, "sdk-life", "sdklife", "lifeHook", armcontainerregistry.WebhookUpdateParameters{
		Properties: &armcontainerregistry.WebhookPropertiesUpdateParameters{Status: ptr(armcontainerregistry.WebhookStatusDisabled)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := up.PollUntilDone(ctx, pollFast)
	if err != nil || *upd.Properties.Status != armcontainerregistry.WebhookStatusDisabled || *upd.Properties.Scope != "app:*" {
		t.Fatalf("update: %+v, %v", upd.Webhook, err)
	}
	cfg, err = hooks.GetCallbackConfig(ctx, "sdk-life", "sdklife", "lifeHook", nil)
	if err != nil || *cfg.CustomHeaders["Authorization"] != "Basic c2VjcmV0" {
		t.Fatalf("headers after PATCH: %+v, %v", cfg.CallbackConfig, err)
	}

	// Ping (delivered even while disabled) and find it in listEvents.
	ping, err := hooks.Ping(ctx, "sdk-life", "sdklife", "lifeHook", nil)
	if err != nil || ping.ID == nil || len(*ping.ID) != 36 {
		t.Fatalf("ping: %+v, %v", ping, err)
	}
	ev := waitForEvent(t, hooks, "sdk-life", "sdklife", "lifeHook", *ping.ID)
	if *ev.EventResponseMessage.StatusCode != "200" || *ev.EventRequestMessage.Method != "POST" ||
		*ev.EventRequestMessage.Content.Action != "ping" || *ev.EventRequestMessage.Headers["Authorization"] != "******" {
		t.Fatalf("ping event: req %+v content %+v resp %+v", ev.EventRequestMessage, ev.EventRequestMessage.Content, ev.EventResponseMessage)
	}

	del, err := hooks.BeginDelete(ctx, "sdk-life", "sdklife", "lifeHook", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, pollFast); err != nil {
		t.Fatal(err)
	}
	_, err = hooks.Get(ctx, "sdk-life", "sdklife", "lifeHook", nil)
	re := respErr(t, err, http.StatusNotFound, "ResourceNotFound")
	if !strings.Contains(re.Error(), "The Resource 'Microsoft.ContainerRegistry/registries/sdklife/webhooks/lifeHook' under resource group 'sdk-life' was not found.") {
		t.Fatalf("404 message: %v", re)
	}
	// Deleting again is 204, which the SDK takes as success.
	del, err = hooks.BeginDelete(ctx, "sdk-life", "sdklife", "lifeHook", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, pollFast); err != nil {
		t.Fatal(err)
	}
}

// waitForEvent pages through listEvents until the event with id appears
// (the dispatcher delivers asynchronously).
func waitForEvent(t *testing.T, hooks *armcontainerregistry.WebhooksClient, rg, reg, hook, id string) *armcontainerregistry.Event {
	t.Helper()
	ctx := ctxT(t)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pager := hooks.NewListEventsPager(rg, reg, hook, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Value {
				if *ev.ID == id {
					return ev
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("event %s never appeared in listEvents", id)
	return nil
}

func TestWebhookListPaging(t *testing.T) {
	t.Parallel()
	regs, hooks := clients(t, apiToken)
	ctx := ctxT(t)
	createRegistry(t, regs, "sdk-paging", "sdkpaging", armcontainerregistry.SKUNamePremium)
	const n = 45 // the server's page is 20: three pages
	for i := range n {
		createWebhook(t, hooks, "sdk-paging", "sdkpaging", fmt.Sprintf("pagehook%02d", i))
	}
	var names []string
	pages := 0
	pager := hooks.NewListPager("sdk-paging", "sdkpaging", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, w := range page.Value {
			names = append(names, *w.Name)
		}
	}
	if pages != 3 || len(names) != n || names[0] != "pagehook00" || names[n-1] != fmt.Sprintf("pagehook%02d", n-1) {
		t.Fatalf("%d pages, %d webhooks: %v", pages, len(names), names)
	}
	usages, err := regs.ListUsages(ctx, "sdk-paging", "sdkpaging", nil)
	if err != nil || *usages.Value[0].CurrentValue != n {
		t.Fatalf("usages: %+v, %v", usages, err)
	}
}

func TestListEventsPaging(t *testing.T) {
	t.Parallel()
	regs, hooks := clients(t, apiToken)
	ctx := ctxT(t)
	createRegistry(t, regs, "sdk-events", "sdkevents", armcontainerregistry.SKUNameBasic)
	createWebhook(t, hooks, "sdk-events", "sdkevents", "eventhook")
	const n = 27 // more than one page of 20
	var ids []string
	for range n {
		p, err := hooks.Ping(ctx, "sdk-events", "sdkevents", "eventhook", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, *p.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got []string
		pages := 0
		pager := hooks.NewListEventsPager("sdk-events", "sdkevents", "eventhook", nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, ev := range page.Value {
				got = append(got, *ev.ID)
			}
		}
		if len(got) == n {
			if pages < 2 {
				t.Fatalf("%d events came in %d page(s)", n, pages)
			}
			for _, id := range ids {
				if !slices.Contains(got, id) {
					t.Fatalf("ping %s missing from %v", id, got)
				}
			}
			return
		}
		if len(got) > n || time.Now().After(deadline) {
			t.Fatalf("listEvents has %d events, want %d", len(got), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	regs, hooks := clients(t, apiToken)
	ctx := ctxT(t)
	createRegistry(t, regs, "sdk-errors", "sdkerrors", armcontainerregistry.SKUNameBasic)

	_, err := hooks.Get(ctx, "sdk-errors", "sdkerrors", "nosuchhook", nil)
	respErr(t, err, http.StatusNotFound, "ResourceNotFound")
	_, err = hooks.Get(ctx, "sdk-errors", "nosuchregistry", "nosuchhook", nil)
	respErr(t, err, http.StatusNotFound, "ResourceNotFound")

	// Validation: the portal's rules, the rule in the message.
	_, err = hooks.BeginCreate(ctx, "sdk-errors", "sdkerrors", "bad-name", webhookParams(env.receiver, armcontainerregistry.WebhookActionPush), nil)
	re := respErr(t, err, http.StatusBadRequest, "InvalidRequestContent")
	if !strings.Contains(re.Error(), "letters and digits") {
		t.Fatalf("400 message: %v", re)
	}
	_, err = hooks.BeginCreate(ctx, "sdk-errors", "sdkerrors", "badaction", webhookParams(env.receiver, "pull"), nil)
	re = respErr(t, err, http.StatusBadRequest, "InvalidRequestContent")
	if !strings.Contains(re.Error(), `unknown action \"pull\"`) {
		t.Fatalf("400 message: %v", re)
	}

	// Quota: Basic allows two webhooks.
	createWebhook(t, hooks, "sdk-errors", "sdkerrors", "quotaone")
	createWebhook(t, hooks, "sdk-errors", "sdkerrors", "quotatwo")
	_, err = hooks.BeginCreate(ctx, "sdk-errors", "sdkerrors", "quotathree", webhookParams(env.receiver, armcontainerregistry.WebhookActionPush), nil)
	re = respErr(t, err, http.StatusConflict, "QuotaExceeded")
	if !strings.Contains(re.Error(), "Quota exceeded for resource type webhooks for the registry SKU Basic.") {
		t.Fatalf("409 message: %v", re)
	}

	// A wrong token is 401 for every client.
	badRegs, badHooks := clients(t, "not-the-token")
	_, err = badHooks.Get(ctx, "sdk-errors", "sdkerrors", "quotaone", nil)
	respErr(t, err, http.StatusUnauthorized, "InvalidAuthenticationToken")
	_, err = badRegs.Get(ctx, "sdk-errors", "sdkerrors", nil)
	respErr(t, err, http.StatusUnauthorized, "InvalidAuthenticationToken")
}
