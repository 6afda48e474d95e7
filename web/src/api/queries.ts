// react-query hooks over the control plane API, one per resource.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { ApiError } from "../lib/errors";
import { api } from "./client";
import { useRefreshingMutation } from "./mutations";
import type {
  Agent,
  AgentCreate,
  AgentScenarios,
  AgentsPage,
  KbDocumentsPage,
  KnowledgeBase,
  KnowledgeBaseCreate,
  KnowledgeBasesPage,
  KnowledgeQuery,
  KnowledgeQueryResult,
  Providers,
  Recording,
  SessionCreate,
  SessionCreated,
  SessionsPage,
  SessionWithTurns,
  SuiteResult,
} from "./types";

export const keys = {
  agents: ["agents"] as const,
  agent: (id: string) => ["agents", id] as const,
  scenarios: (id: string) => ["agents", id, "scenarios"] as const,
  providers: ["providers"] as const,
  kbs: ["knowledge-bases"] as const,
  kb: (id: string) => ["knowledge-bases", id] as const,
  documents: (id: string) => ["knowledge-bases", id, "documents"] as const,
  sessions: (filters: SessionFilters) => ["sessions", filters] as const,
  session: (id: string) => ["session", id] as const,
  recording: (id: string) => ["session", id, "recording"] as const,
};

export function useAgents() {
  return useQuery({ queryKey: keys.agents, queryFn: () => api.get<AgentsPage>("/api/agents?limit=500") });
}

export function useAgent(id: string | undefined) {
  return useQuery({
    queryKey: keys.agent(id ?? ""),
    queryFn: () => api.get<Agent>(`/api/agents/${id}`),
    enabled: !!id,
  });
}

export function useProviders() {
  return useQuery({ queryKey: keys.providers, queryFn: () => api.get<Providers>("/api/providers") });
}

export function useSaveAgent(id: string | undefined) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: AgentCreate) =>
      id ? api.patch<Agent>(`/api/agents/${id}`, body) : api.post<Agent>("/api/agents", body),
    onSuccess: (agent) => {
      qc.setQueryData(keys.agent(agent.id), agent);
      void qc.invalidateQueries({ queryKey: keys.agents });
    },
  });
}

export function useScenarios(agentId: string) {
  return useQuery({
    queryKey: keys.scenarios(agentId),
    queryFn: () => api.get<AgentScenarios>(`/api/agents/${agentId}/scenarios`),
  });
}

export function useSaveScenarios(agentId: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (yaml: string) => api.put<AgentScenarios>(`/api/agents/${agentId}/scenarios`, { yaml }),
    onSuccess: (saved) => qc.setQueryData(keys.scenarios(agentId), saved),
  });
}

/** Runs the saved scenarios against the agent as saved; the answer is the run's result. */
export function useRunScenarios(agentId: string) {
  return useRefreshingMutation(keys.scenarios(agentId), () =>
    api.post<SuiteResult>(`/api/agents/${agentId}/scenarios/run`),
  );
}

export function useDuplicateAgent() {
  return useRefreshingMutation(keys.agents, (id: string) => api.post<Agent>(`/api/agents/${id}/duplicate`));
}

export function useDeleteAgent() {
  return useRefreshingMutation(keys.agents, (id: string) => api.delete(`/api/agents/${id}`));
}

export function useKnowledgeBases() {
  return useQuery({
    queryKey: keys.kbs,
    queryFn: () => api.get<KnowledgeBasesPage>("/api/knowledge-bases?limit=500"),
  });
}

export function useKnowledgeBase(id: string) {
  return useQuery({ queryKey: keys.kb(id), queryFn: () => api.get<KnowledgeBase>(`/api/knowledge-bases/${id}`) });
}

export function useCreateKnowledgeBase() {
  return useRefreshingMutation(keys.kbs, (body: KnowledgeBaseCreate) =>
    api.post<KnowledgeBase>("/api/knowledge-bases", body),
  );
}

export function useDeleteKnowledgeBase() {
  return useRefreshingMutation(keys.kbs, (id: string) => api.delete(`/api/knowledge-bases/${id}`));
}

const INGESTING = new Set(["queued", "processing"]);

export function useDocuments(kbId: string) {
  return useQuery({
    queryKey: keys.documents(kbId),
    queryFn: () => api.get<KbDocumentsPage>(`/api/knowledge-bases/${kbId}/documents?limit=500`),
    // Poll while anything is still being ingested.
    refetchInterval: (q) => (q.state.data?.items.some((d) => INGESTING.has(d.status)) ? 1000 : false),
  });
}

export function useDeleteDocument(kbId: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (docId: string) => api.delete(`/api/knowledge-bases/${kbId}/documents/${docId}`),
    onSuccess: () => {
      void qc.invalidateQueries({ queryKey: keys.documents(kbId) });
      void qc.invalidateQueries({ queryKey: keys.kbs });
    },
  });
}

export function useQueryKnowledgeBase(kbId: string) {
  return useMutation({
    mutationFn: (body: KnowledgeQuery) =>
      api.post<KnowledgeQueryResult>(`/api/knowledge-bases/${kbId}/query`, body),
  });
}

export interface SessionFilters {
  agent_id?: string;
  channel?: string;
  status?: string;
  since?: string;
  analysis_status?: string;
  analysis_field?: string;
  analysis_value?: string;
}

/** The query string of the call list's filters (empty ones left out). */
export function sessionParams(filters: SessionFilters, extra: Record<string, string> = {}): URLSearchParams {
  const params = new URLSearchParams(extra);
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  return params;
}

export function useSessions(filters: SessionFilters) {
  const params = sessionParams(filters, { limit: "200" });
  return useQuery({
    queryKey: keys.sessions(filters),
    queryFn: () => api.get<SessionsPage>(`/api/sessions?${params}`),
    refetchInterval: 5000,
  });
}

/**
 * One session. `poll`: "live" refetches every second (a call in progress: turns keep arriving
 * even after the worker has reported the end), "until-ended" until it has ended.
 */
export function useSession(id: string | undefined, poll: "live" | "until-ended" | false = false) {
  return useQuery({
    queryKey: keys.session(id ?? ""),
    queryFn: () => api.get<SessionWithTurns>(`/api/sessions/${id}`),
    enabled: !!id,
    refetchInterval: (q) => {
      const status = q.state.data?.status;
      if (poll === "live") return 1000;
      const analysis = q.state.data?.analysis?.status;
      const ended = status === "completed" || status === "failed" || status === "abandoned";
      // after the end, until the analysis is done
      if (poll && ended && (analysis === "pending" || analysis === "running")) return 2000;
      return poll && !ended ? 1000 : false;
    },
  });
}

/**
 * A session's recording and a short-lived URL that plays it; `null` when it has none. The
 * worker uploads it once the call has ended, so an ended call is polled for a minute. The URL
 * is fetched once (the player loads the whole file), never refetched under the player.
 */
export function useRecording(id: string | undefined, endedAt: string | null | undefined) {
  return useQuery({
    queryKey: keys.recording(id ?? ""),
    queryFn: async () => {
      try {
        return await api.get<Recording>(`/api/sessions/${id}/recording`);
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }
    },
    enabled: !!id,
    staleTime: Infinity,
    refetchInterval: (q) =>
      q.state.data === null && endedAt && Date.now() - Date.parse(endedAt) < 60_000 ? 2000 : false,
  });
}

export function useStartSession() {
  return useMutation({
    mutationFn: (agentId: string) =>
      api.post<SessionCreated>("/api/sessions", { agent_id: agentId } satisfies SessionCreate),
  });
}
