// Shapes of the control plane's public HTTP API (control_plane/models.py, stimm/schema.py).

export interface ProviderSpec {
  provider: string;
  model?: string | null;
  options?: Record<string, unknown>;
}

export interface TurnTaking {
  turn_detection: "auto" | "model" | "vad";
  min_endpointing_delay: number;
  max_endpointing_delay: number;
  allow_interruptions: boolean;
  interruption_min_duration: number;
  preemptive_generation: boolean;
  preemptive_tts: boolean;
  early_first_clause: boolean;
  no_show_timeout_s: number;
}

export interface WebhookTool {
  type: "webhook";
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  timeout_s: number;
}

export interface EndCallTool {
  type: "end_call";
  description?: string | null;
}

export interface TransferCallTool {
  type: "transfer_call";
  target: string;
  description?: string | null;
}

export interface McpServerTool {
  type: "mcp";
  name: string;
  url: string;
  transport: "streamable_http" | "sse";
  headers: Record<string, string>;
  allowed_tools: string[] | null;
  timeout_s: number;
}

export interface McpToolInfo {
  name: string;
  description: string | null;
}

export type Tool = WebhookTool | EndCallTool | TransferCallTool | McpServerTool;

export interface RagOptions {
  top_k: number;
  min_score: number;
  speculative: boolean;
}

export interface AgentConfig {
  name: string;
  instructions: string;
  greeting: string | null;
  language: string;
  voice: string | null;
  stt: ProviderSpec[];
  llm: ProviderSpec[];
  tts: ProviderSpec[];
  turn_taking: TurnTaking;
  tools: Tool[];
  knowledge_base_id: string | null;
  rag: RagOptions;
}

export interface Agent extends AgentConfig {
  id: string;
  is_default: boolean;
  created_at: string;
  updated_at: string;
}

export interface Page<T> {
  items: T[];
  count: number;
}

export interface ProviderOption {
  name: string;
  type: "string" | "number" | "integer" | "boolean";
  description: string;
  default: string | number | boolean | null;
  required: boolean;
}

export interface Provider {
  name: string;
  label: string;
  models: string[] | null;
  default_model: string | null;
  options: ProviderOption[];
  secrets: { name: string; set: boolean }[];
  local: boolean;
  openai_compatible: boolean;
  /** A small demo model: it shows the path works but can make facts up. */
  demo: boolean;
}

export type ProviderRole = "stt" | "llm" | "tts";
export type Providers = Record<ProviderRole, Provider[]>;

export type SessionStatus = "created" | "active" | "completed" | "failed" | "abandoned";
export type Channel = "web" | "phone";

export interface SessionCreated {
  session_id: string;
  room: string;
  livekit_url: string;
  token: string;
  expires_at: string;
}

export interface Session {
  id: string;
  agent_id: string;
  room: string;
  channel: Channel;
  status: SessionStatus;
  failure_reason: string | null;
  participant_identity: string | null;
  turn_detection: string | null;
  worker_id: string | null;
  started_at: string | null;
  ended_at: string | null;
  created_at: string;
}

export interface TurnMetrics {
  end_of_turn_delay: number | null;
  transcription_delay: number | null;
  llm_ttft: number | null;
  tts_ttfb: number | null;
  e2e_latency: number | null;
  retrieval: number | null;
}

export interface Turn {
  id: number;
  session_id: string;
  seq: number;
  role: "user" | "assistant";
  text: string;
  interrupted: boolean;
  started_at: string | null;
  ended_at: string | null;
  metrics: TurnMetrics;
  created_at: string;
}

export interface SessionWithTurns extends Session {
  turns: Turn[];
}

export interface KnowledgeBase {
  id: string;
  name: string;
  description: string | null;
  chunk_size: number;
  chunk_overlap: number;
  embedding_model: string;
  embedding_dim: number;
  document_count: number;
  created_at: string;
  updated_at: string;
}

export type DocumentStatus = "queued" | "processing" | "ready" | "failed";

export interface KbDocument {
  id: string;
  knowledge_base_id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  status: DocumentStatus;
  error: string | null;
  chunks_total: number;
  chunks_embedded: number;
  attempts: number;
  created_at: string;
  updated_at: string;
}

export interface RetrievedChunk {
  document_id: string;
  document_name: string;
  text: string;
  score: number;
}

export interface KnowledgeQueryResult {
  chunks: RetrievedChunk[];
  retrieval_ms: number;
}

// Agent test scenarios (stimm/scenarios.py, control_plane/scenarios/models.py).

export interface CheckResult {
  turn: number;
  check: string;
  passed: boolean;
  detail: string | null;
}

export interface ScenarioResult {
  name: string;
  passed: boolean;
  checks: CheckResult[];
  error: string | null;
  transcript: string[];
}

export interface SuiteResult {
  passed: boolean;
  scenarios: ScenarioResult[];
  duration_s: number;
  warnings: string[];
}

export interface AgentScenarios {
  agent_id: string;
  yaml: string;
  updated_at: string | null;
  last_run: SuiteResult | null;
  last_run_at: string | null;
}
