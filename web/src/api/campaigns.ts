// Outbound call campaigns (control_plane/campaigns/) and their hooks; polled while they run.

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";
import { useRefreshingMutation } from "./mutations";
import type { Campaign, CampaignCreate, CampaignRows, CampaignsPage } from "./types";

const campaignsKey = ["campaigns"] as const;

export function useCampaigns() {
  return useQuery({
    queryKey: campaignsKey,
    queryFn: () => api.get<CampaignsPage>("/api/campaigns"),
    refetchInterval: 2000,
  });
}

export function useCampaignRows(id: string | null) {
  return useQuery({
    queryKey: ["campaigns", id, "rows"],
    queryFn: () => api.get<CampaignRows>(`/api/campaigns/${id}/rows`),
    enabled: !!id,
    refetchInterval: 2000,
  });
}

export function useCreateCampaign() {
  return useRefreshingMutation(campaignsKey, (body: CampaignCreate) => api.post<Campaign>("/api/campaigns", body));
}

/** Start, pause, resume or cancel a campaign. */
export function useCampaignAction() {
  return useRefreshingMutation(campaignsKey, ({ id, action }: { id: string; action: string }) =>
    api.post<Campaign>(`/api/campaigns/${id}/${action}`),
  );
}
