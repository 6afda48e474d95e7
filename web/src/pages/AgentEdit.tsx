import { type FormEvent, type ReactNode, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";

import { useAgent, useKnowledgeBases, useProviders, useSaveAgent } from "../api/queries";
import type { AgentConfig, Providers, ProviderRole } from "../api/types";
import { ProviderPicker, defaultSpec } from "../components/ProviderPicker";
import { AnalysisEditor } from "../components/AnalysisEditor";
import { ToolsEditor } from "../components/ToolsEditor";
import { ErrorAlert, Field, Loading, PageHead } from "../components/ui";
import { DEMO_LLM_NOTICE, usesDemoModel } from "../lib/demoModel";
import { unplacedMessages } from "../lib/errors";
import { ScenariosPanel } from "./AgentScenarios";

const TURN_TAKING: AgentConfig["turn_taking"] = {
  turn_detection: "vad",
  min_endpointing_delay: 0.5,
  max_endpointing_delay: 3,
  allow_interruptions: true,
  interruption_min_duration: 0.5,
  preemptive_generation: true,
  preemptive_tts: true,
  early_first_clause: true,
  no_show_timeout_s: 30,
};

function blankAgent(providers: Providers): AgentConfig {
  const first = (role: ProviderRole) => {
    const p = providers[role].find((x) => x.local) ?? providers[role][0];
    return p ? [defaultSpec(p)] : [];
  };
  return {
    name: "",
    instructions: "",
    greeting: "",
    language: "en",
    voice: null,
    stt: first("stt"),
    llm: first("llm"),
    tts: first("tts"),
    turn_taking: TURN_TAKING,
    tools: [],
    knowledge_base_id: null,
    rag: { top_k: 3, min_score: 0, speculative: true },
    analysis: { enabled: false, summary: true, fields: [] },
    redact_pii: false,
    voicemail: { detect: false, on_machine: "hang_up", message: null, timeout_s: 20 },
    recording: { enabled: false, retention_days: 30 },
  };
}

function configOf(agent: AgentConfig): AgentConfig {
  const { name, instructions, greeting, language, voice, stt, llm, tts, turn_taking, tools, knowledge_base_id, rag, analysis, redact_pii, voicemail, recording } = agent;
  return { name, instructions, greeting, language, voice, stt, llm, tts, turn_taking, tools, knowledge_base_id, rag, analysis, redact_pii, voicemail, recording };
}

/** Empty optional texts go to the API as null, numbers typed as text as numbers. */
function toBody(form: AgentConfig): AgentConfig {
  return { ...form, greeting: form.greeting?.trim() || null, voice: form.voice?.trim() || null };
}

const SHOWN_FIELDS = ["name", "instructions", "greeting", "language", "voice", "stt", "llm", "tts", "turn_taking", "tools", "knowledge_base_id", "rag", "analysis", "redact_pii", "voicemail", "recording"];

function Section(props: { title: string; sub: string; children: ReactNode }) {
  return (
    <section className="form-section">
      <header>
        <h2>{props.title}</h2>
        <p>{props.sub}</p>
      </header>
      <div className="form-fields">{props.children}</div>
    </section>
  );
}

export function AgentEditPage() {
  const { id } = useParams();
  const agent = useAgent(id);
  const providers = useProviders();
  const form = id
    ? agent.data && configOf(agent.data)
    : providers.data && blankAgent(providers.data);

  const title = id ? agent.data?.name ?? "Agent" : "New agent";
  const crumbs = <Link to="/agents">Agents</Link>;
  if (agent.error || providers.error) {
    return (
      <>
        <PageHead title={title} crumbs={crumbs} />
        <ErrorAlert error={agent.error ?? providers.error} />
      </>
    );
  }
  if (!form || !providers.data) {
    return (
      <>
        <PageHead title={title} crumbs={crumbs} />
        <div className="card">
          <Loading what="the agent" />
        </div>
      </>
    );
  }
  return (
    <>
      <AgentForm key={id ?? "new"} id={id} title={title} initial={form} providers={providers.data} />
      {id && <ScenariosPanel agentId={id} />}
    </>
  );
}

function AgentForm(props: { id?: string; title: string; initial: AgentConfig; providers: Providers }) {
  const { id, providers } = props;
  const [form, setForm] = useState(props.initial);
  const [saved, setSaved] = useState(false);
  const save = useSaveAgent(id);
  const kbs = useKnowledgeBases();
  const navigate = useNavigate();
  const err = save.error;
  const set = <K extends keyof AgentConfig>(k: K, v: AgentConfig[K]) => {
    setSaved(false);
    setForm((f) => ({ ...f, [k]: v }));
  };
  const tt = form.turn_taking;
  const setTt = <K extends keyof AgentConfig["turn_taking"]>(k: K, v: AgentConfig["turn_taking"][K]) =>
    set("turn_taking", { ...tt, [k]: v });

  function submit(e: FormEvent) {
    e.preventDefault();
    save.mutate(toBody(form), {
      onSuccess: (agent) => {
        setSaved(true);
        if (!id) navigate(`/agents/${agent.id}`, { replace: true });
      },
      onError: () =>
        requestAnimationFrame(() =>
          document.querySelector(".field.invalid")?.scrollIntoView({ block: "center" }),
        ),
    });
  }

  const unplaced = unplacedMessages(err, SHOWN_FIELDS);
  return (
    <form onSubmit={submit} noValidate>
      <PageHead
        title={props.title}
        crumbs={<Link to="/agents">Agents</Link>}
        actions={id && <Link className="btn" to={`/talk?agent=${id}`}>Talk to this agent</Link>}
      />
      <div className="card">
        <Section title="Identity" sub="How the agent presents itself and what it is for.">
          <div className="grid-2">
            <Field label="Name" htmlFor="agent-name" path="name" error={err}>
              <input id="agent-name" className="input" value={form.name} onChange={(e) => set("name", e.target.value)} />
            </Field>
            <div className="grid-2">
              <Field label="Language" htmlFor="agent-language" path="language" error={err} hint="BCP 47, e.g. en, fr-FR">
                <input id="agent-language" className="input" value={form.language} onChange={(e) => set("language", e.target.value)} />
              </Field>
              <Field label="Voice" htmlFor="agent-voice" path="voice" error={err} hint="Provider's voice id">
                <input id="agent-voice" className="input" value={form.voice ?? ""} placeholder="Default" onChange={(e) => set("voice", e.target.value)} />
              </Field>
            </div>
          </div>
          <Field label="Instructions" htmlFor="agent-instructions" path="instructions" error={err} hint="The system prompt: role, tone, what to do and not do.">
            <textarea id="agent-instructions" className="textarea" rows={6} value={form.instructions} onChange={(e) => set("instructions", e.target.value)} />
          </Field>
          <Field label="Greeting" htmlFor="agent-greeting" path="greeting" error={err} hint="Said when someone joins; leave empty to wait for the caller.">
            <input id="agent-greeting" className="input" value={form.greeting ?? ""} onChange={(e) => set("greeting", e.target.value)} />
          </Field>
        </Section>
        <Section title="Speech to text" sub="Transcribes the caller. Several providers fail over in order.">
          <ProviderPicker role="stt" catalog={providers.stt} specs={form.stt} onChange={(v) => set("stt", v)} error={err} />
        </Section>
        <Section title="Language model" sub="Writes the answers. Any OpenAI-compatible server works with its base URL.">
          {usesDemoModel(form.llm, providers.llm) && (
            <div className="alert warning" role="note" data-testid="demo-llm-notice">
              {DEMO_LLM_NOTICE}
            </div>
          )}
          <ProviderPicker role="llm" catalog={providers.llm} specs={form.llm} onChange={(v) => set("llm", v)} error={err} />
        </Section>
        <Section title="Text to speech" sub="Speaks the answers.">
          <ProviderPicker role="tts" catalog={providers.tts} specs={form.tts} onChange={(v) => set("tts", v)} error={err} />
        </Section>
        <Section title="Turn taking" sub="When the caller has finished, and when the agent may be interrupted.">
          <div className="grid-3">
            <Field label="End-of-turn detection" htmlFor="tt-detection" path="turn_taking.turn_detection" error={err}>
              <select id="tt-detection" className="select" value={tt.turn_detection} onChange={(e) => setTt("turn_detection", e.target.value as typeof tt.turn_detection)}>
                <option value="vad">Silence only (VAD)</option>
                <option value="model">Turn-detector model</option>
                <option value="auto">Model if available, else silence</option>
              </select>
            </Field>
            <Field label="Min. silence (s)" htmlFor="tt-min" path="turn_taking.min_endpointing_delay" error={err}>
              <input id="tt-min" className="input" type="number" step="0.1" value={tt.min_endpointing_delay} onChange={(e) => setTt("min_endpointing_delay", Number(e.target.value))} />
            </Field>
            <Field label="Max. wait (s)" htmlFor="tt-max" path="turn_taking.max_endpointing_delay" error={err}>
              <input id="tt-max" className="input" type="number" step="0.1" value={tt.max_endpointing_delay} onChange={(e) => setTt("max_endpointing_delay", Number(e.target.value))} />
            </Field>
          </div>
          <div className="grid-3">
            <label className="check">
              <input type="checkbox" checked={tt.allow_interruptions} onChange={(e) => setTt("allow_interruptions", e.target.checked)} />
              Caller can interrupt
            </label>
            <Field label="Interrupt after (s) of speech" htmlFor="tt-int" path="turn_taking.interruption_min_duration" error={err}>
              <input id="tt-int" className="input" type="number" step="0.1" disabled={!tt.allow_interruptions} value={tt.interruption_min_duration} onChange={(e) => setTt("interruption_min_duration", Number(e.target.value))} />
            </Field>
            <label className="check">
              <input type="checkbox" checked={tt.preemptive_generation} onChange={(e) => setTt("preemptive_generation", e.target.checked)} />
              Start answering before the turn ends
            </label>
            <label className="check">
              <input type="checkbox" checked={tt.preemptive_tts} disabled={!tt.preemptive_generation} onChange={(e) => setTt("preemptive_tts", e.target.checked)} />
              …and have its first audio ready
            </label>
            <label className="check">
              <input type="checkbox" checked={tt.early_first_clause} onChange={(e) => setTt("early_first_clause", e.target.checked)} />
              Speak the first clause as soon as it is ready
            </label>
          </div>
        </Section>
        <Section title="Knowledge" sub="Documents the agent looks things up in before it answers.">
          <div className="grid-3">
            <Field label="Knowledge base" htmlFor="agent-kb" path="knowledge_base_id" error={err}>
              <select id="agent-kb" className="select" value={form.knowledge_base_id ?? ""} onChange={(e) => set("knowledge_base_id", e.target.value || null)}>
                <option value="">None</option>
                {kbs.data?.items.map((k) => (
                  <option key={k.id} value={k.id}>
                    {k.name}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Chunks per answer" htmlFor="rag-k" path="rag.top_k" error={err}>
              <input id="rag-k" className="input" type="number" min={1} max={20} disabled={!form.knowledge_base_id} value={form.rag.top_k} onChange={(e) => set("rag", { ...form.rag, top_k: Number(e.target.value) })} />
            </Field>
            <Field label="Minimum score" htmlFor="rag-min" path="rag.min_score" error={err}>
              <input id="rag-min" className="input" type="number" step="0.05" disabled={!form.knowledge_base_id} value={form.rag.min_score} onChange={(e) => set("rag", { ...form.rag, min_score: Number(e.target.value) })} />
            </Field>
          </div>
          <label className="check">
            <input type="checkbox" disabled={!form.knowledge_base_id} checked={form.rag.speculative} onChange={(e) => set("rag", { ...form.rag, speculative: e.target.checked })} />
            Search while the caller is still speaking
          </label>
        </Section>
        <Section title="Recording" sub="The caller and the agent in one stereo file, played back on the session's page.">
          <div className="grid-3">
            <label className="check">
              <input type="checkbox" checked={form.recording.enabled} onChange={(e) => set("recording", { ...form.recording, enabled: e.target.checked })} />
              Record sessions
            </label>
            <Field label="Keep recordings for (days)" htmlFor="rec-days" path="recording.retention_days" error={err}>
              <input id="rec-days" className="input" type="number" min={1} max={3650} disabled={!form.recording.enabled} value={form.recording.retention_days} onChange={(e) => set("recording", { ...form.recording, retention_days: Number(e.target.value) })} />
            </Field>
          </div>
        </Section>
        <Section title="Voicemail" sub="On outbound calls: listen to who answers before greeting.">
          <label className="check">
            <input type="checkbox" checked={form.voicemail.detect} onChange={(e) => set("voicemail", { ...form.voicemail, detect: e.target.checked })} /> Detect answering machines
          </label>
          <Field label="On a machine" htmlFor="vm-action" path="voicemail.on_machine" error={err}>
            <select id="vm-action" className="select" disabled={!form.voicemail.detect} value={form.voicemail.on_machine} onChange={(e) => set("voicemail", { ...form.voicemail, on_machine: e.target.value as "hang_up" | "leave_message" })}>
              <option value="hang_up">Hang up</option>
              <option value="leave_message">Leave a message after the beep</option>
            </select>
          </Field>
          <Field label="Message" htmlFor="vm-message" path="voicemail" prefix error={err} hint="{placeholders} are filled from a campaign's columns">
            <textarea id="vm-message" className="textarea" disabled={!form.voicemail.detect || form.voicemail.on_machine !== "leave_message"} value={form.voicemail.message ?? ""} onChange={(e) => set("voicemail", { ...form.voicemail, message: e.target.value || null })} />
          </Field>
        </Section>
        <Section title="Tools" sub="Actions the LLM can take during a call.">
          <ToolsEditor tools={form.tools} onChange={(v) => set("tools", v)} error={err} />
        </Section>
        <Section title="After the call" sub="What the agent's LLM writes down once a call ends, and what is kept of personal data.">
          <AnalysisEditor analysis={form.analysis} onChange={(v) => set("analysis", v)} error={err} />
          <label className="check">
            <input type="checkbox" checked={form.redact_pii} onChange={(e) => set("redact_pii", e.target.checked)} />
            Mask phone numbers, emails and card numbers in stored transcripts and analyses
          </label>
        </Section>
        <div className="form-foot">
          {err ? <ErrorAlert error={err} extra={unplaced} /> : saved && <span className="badge green">Saved</span>}
          <span className="spacer" />
          <Link className="btn" to="/agents">
            Cancel
          </Link>
          <button className="btn primary" type="submit" disabled={save.isPending}>
            {save.isPending ? "Saving…" : id ? "Save changes" : "Create agent"}
          </button>
        </div>
      </div>
    </form>
  );
}
