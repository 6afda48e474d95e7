// The control plane's API types under the names the console uses. Nothing here is written by
// hand: every type comes from the app's OpenAPI schema (`python -m control_plane.openapi` writes
// web/openapi.json, `npm run gen:api` turns it into ./schema.d.ts).
//
// A model used both ways has two schemas: "-Output" as the API returns it (every field present)
// and "-Input" as a request may send it (fields with a default may be left out). The console
// reads and edits what it was sent, so it uses the "-Output" shapes.

import type { components } from "./schema";

type Schemas = components["schemas"];

// --- agents -----------------------------------------------------------------------------------

export type Agent = Schemas["AgentPublic"];
/** An agent's config as the editor holds it: the agent less the fields of its record. */
export type AgentConfig = Omit<Agent, "id" | "is_default" | "created_at" | "updated_at">;
export type AgentCreate = Schemas["AgentCreate"];
export type AgentUpdate = Schemas["AgentUpdate"];
export type AgentsPage = Schemas["AgentsPublic"];
export type ProviderSpec = Schemas["ProviderSpec-Output"];
export type TurnTaking = Schemas["TurnTaking-Output"];
export type RagOptions = Schemas["RagOptions-Output"];
export type RecordingPolicy = Schemas["RecordingPolicy-Output"];
export type Tool = Agent["tools"][number];
export type WebhookTool = Schemas["WebhookTool-Output"];
export type EndCallTool = Schemas["EndCallTool-Output"];
export type TransferCallTool = Schemas["TransferCallTool-Output"];
export type WarmTransferTool = Schemas["WarmTransferTool-Output"];
export type McpServerTool = Schemas["McpServerTool-Output"];
export type McpToolInfo = Schemas["McpToolInfo"];
export type McpTools = Schemas["McpTools"];
export type SecretRef = Schemas["SecretRef"];
export type AnalysisConfig = Schemas["AnalysisConfig-Output"];
export type AnalysisField = Schemas["AnalysisField-Output"];

// --- providers --------------------------------------------------------------------------------

export type Providers = Schemas["ProvidersPublic"];
export type ProviderRole = keyof Providers;
export type Provider = Schemas["ProviderPublic"];
export type ProviderOption = Schemas["ProviderOptionPublic"];

// --- sessions and turns -----------------------------------------------------------------------

export type SessionCreate = Schemas["SessionCreate"];
export type SessionCreated = Schemas["SessionCreated"];
export type Session = Schemas["SessionPublic"];
export type SessionsPage = Schemas["SessionsPublic"];
export type SessionWithTurns = Schemas["SessionPublicWithAnalysis"];
export type SessionAnalysis = Schemas["SessionAnalysisPublic"];
export type AnalysisStatus = SessionAnalysis["status"];
export type SessionStatus = Session["status"];
export type Channel = Session["channel"];
export type Turn = Schemas["TurnPublic"];
export type TurnMetrics = Schemas["TurnMetrics-Output"];
export type Recording = Schemas["RecordingPublic"];

// --- knowledge bases --------------------------------------------------------------------------

export type KnowledgeBase = Schemas["KnowledgeBasePublic"];
export type KnowledgeBaseCreate = Schemas["KnowledgeBaseCreate"];
export type KnowledgeBasesPage = Schemas["KnowledgeBasesPublic"];
export type KbDocument = Schemas["DocumentPublic"];
export type KbDocumentsPage = Schemas["DocumentsPublic"];
export type DocumentStatus = KbDocument["status"];
export type KnowledgeQuery = Schemas["KnowledgeQuery"];
export type RetrievedChunk = Schemas["RetrievedChunk"];
export type KnowledgeQueryResult = Schemas["KnowledgeQueryResult"];

// --- telephony --------------------------------------------------------------------------------

export type PhoneNumber = Schemas["PhoneNumberPublic"];
export type PhoneNumberCreate = Schemas["PhoneNumberCreate"];
/** Fields left out are kept; `auth_password` is only sent to replace it (or null to remove). */
export type PhoneNumberUpdate = Schemas["PhoneNumberUpdate"];
export type PhoneNumbersPage = Schemas["PhoneNumbersPublic"];
export type Call = Schemas["CallPublic"];
export type CallCreate = Schemas["CallCreate"];
export type CallOutcome = Call["outcome"];
export type TelephonyStatus = Schemas["TelephonyStatus"];
export type SipHealth = TelephonyStatus["sip"];

// --- workers ----------------------------------------------------------------------------------

export type Worker = Schemas["WorkerPublic"];
export type Workers = Schemas["WorkersPublic"];

// --- publishable keys (the embeddable widget) -------------------------------------------------

export type PublishableKey = Schemas["PublishableKeyPublic"];
export type PublishableKeyCreate = Schemas["PublishableKeyCreate"];
export type PublishableKeysPage = Schemas["PublishableKeysPublic"];

// --- agent test scenarios (stimm/scenarios.py) ------------------------------------------------

export type AgentScenarios = Schemas["ScenariosPublic"];
export type SuiteResult = Schemas["SuiteResult"];
export type ScenarioResult = Schemas["ScenarioResult"];
export type CheckResult = Schemas["CheckResult"];

// --- webhooks ---------------------------------------------------------------------------------

export type WebhookEndpoint = Schemas["WebhookEndpointPublic"];
export type WebhookEndpointCreate = Schemas["WebhookEndpointCreate"];
export type WebhookEndpointCreated = Schemas["WebhookEndpointCreated"];
export type WebhookEndpointsPage = Schemas["WebhookEndpointsPublic"];
export type WebhookEvent = WebhookEndpoint["events"][number];
export type WebhookDelivery = Schemas["WebhookDeliveryPublic"];
export type WebhookDeliveriesPage = Schemas["WebhookDeliveriesPublic"];

// --- campaigns --------------------------------------------------------------------------------

export type Campaign = Schemas["CampaignPublic"];
export type CampaignsPage = Schemas["CampaignsPublic"];
export type CampaignCreate = Schemas["CampaignCreate"];
export type CampaignRows = Schemas["CampaignRowsPublic"];
