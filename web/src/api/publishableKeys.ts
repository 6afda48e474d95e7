// Publishable keys of the embeddable widget (control_plane/widget/models.py) and their hooks.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api } from "./client";
import type { PublishableKey, PublishableKeyCreate, PublishableKeysPage } from "./types";

export type { PublishableKey, PublishableKeyCreate };

const publishableKeysKey = ["publishable-keys"] as const;

export function usePublishableKeys() {
  return useQuery({
    queryKey: publishableKeysKey,
    queryFn: () => api.get<PublishableKeysPage>("/api/publishable-keys"),
  });
}

export function useCreatePublishableKey() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: PublishableKeyCreate) => api.post<PublishableKey>("/api/publishable-keys", body),
    onSuccess: () => qc.invalidateQueries({ queryKey: publishableKeysKey }),
  });
}

export function useRevokePublishableKey() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.delete(`/api/publishable-keys/${id}`),
    onSuccess: () => qc.invalidateQueries({ queryKey: publishableKeysKey }),
  });
}
