// Publishable keys of the embeddable widget (control_plane/widget/models.py) and their hooks.

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";
import { useRefreshingMutation } from "./mutations";
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
  return useRefreshingMutation(publishableKeysKey, (body: PublishableKeyCreate) =>
    api.post<PublishableKey>("/api/publishable-keys", body),
  );
}

export function useRevokePublishableKey() {
  return useRefreshingMutation(publishableKeysKey, (id: string) => api.delete(`/api/publishable-keys/${id}`));
}
