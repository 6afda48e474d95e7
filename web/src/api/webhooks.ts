// Webhook endpoints and their delivery log (control_plane/postcall/models.py) and their hooks.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api } from "./client";
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
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: WebhookEndpointCreate) => api.post<WebhookEndpointCreated>("/api/webhooks", body),
    onSuccess: () => qc.invalidateQueries({ queryKey: endpointsKey }),
  });
}

export function useUpdateWebhook() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ id, ...body }: { id: string; enabled: boolean }) => api.patch<WebhookEndpoint>(`/api/webhooks/${id}`, body),
    onSuccess: () => qc.invalidateQueries({ queryKey: endpointsKey }),
  });
}

export function useDeleteWebhook() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.delete(`/api/webhooks/${id}`),
    onSuccess: () => qc.invalidateQueries({ queryKey: endpointsKey }),
  });
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
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (deliveryId: string) =>
      api.post<WebhookDelivery>(`/api/webhooks/${endpointId}/deliveries/${deliveryId}/resend`),
    onSuccess: () => qc.invalidateQueries({ queryKey: deliveriesKey(endpointId) }),
  });
}
