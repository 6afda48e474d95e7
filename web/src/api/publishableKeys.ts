// Publishable keys of the embeddable widget (control_plane/widget/models.py) and their hooks.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api } from "./client";
import type { Page } from "./types";

export interface PublishableKey {
  id: string;
  name: string;
  /** Public by design: it sits in the HTML of every page that embeds the widget. */
  key: string;
  agent_ids: string[];
  allowed_origins: string[];
  created_at: string;
  revoked_at: string | null;
}

export interface PublishableKeyCreate {
  name: string;
  agent_ids: string[];
  allowed_origins: string[];
}

const publishableKeysKey = ["publishable-keys"] as const;

export function usePublishableKeys() {
  return useQuery({
    queryKey: publishableKeysKey,
    queryFn: () => api.get<Page<PublishableKey>>("/api/publishable-keys"),
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
