// Webhook endpoints and their delivery log (control_plane/postcall/models.py) and their hooks.

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";
import { useRefreshingMutation } from "./mutations";
import type {
  WebhookDeliveriesPage,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointCreate,
  WebhookEndpointCreated,
  WebhookEndpointsPage,
} from "./types";

const endpointsKey = ["webhooks"] as const;
const deliveriesKey = (id: string) => ["webhooks", id, "deliveries"] as const;

export function useWebhooks() {
  return useQuery({ queryKey: endpointsKey, queryFn: () => api.get<WebhookEndpointsPage>("/api/webhooks") });
}

export function useCreateWebhook() {
  return useRefreshingMutation(endpointsKey, (body: WebhookEndpointCreate) =>
    api.post<WebhookEndpointCreated>("/api/webhooks", body),
  );
}

export function useUpdateWebhook() {
  return useRefreshingMutation(endpointsKey, ({ id, ...body }: { id: string; enabled: boolean }) =>
    api.patch<WebhookEndpoint>(`/api/webhooks/${id}`, body),
  );
}

export function useDeleteWebhook() {
  return useRefreshingMutation(endpointsKey, (id: string) => api.delete(`/api/webhooks/${id}`));
}

/** The endpoint's delivery log, refreshed while deliveries are pending. */
export function useDeliveries(endpointId: string | undefined) {
  return useQuery({
    queryKey: deliveriesKey(endpointId ?? ""),
    queryFn: () => api.get<WebhookDeliveriesPage>(`/api/webhooks/${endpointId}/deliveries?limit=100`),
    enabled: !!endpointId,
    refetchInterval: 2000,
  });
}

export function useResend(endpointId: string) {
  return useRefreshingMutation(deliveriesKey(endpointId), (deliveryId: string) =>
    api.post<WebhookDelivery>(`/api/webhooks/${endpointId}/deliveries/${deliveryId}/resend`),
  );
}
