import { type FormEvent, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useQueryClient } from "@tanstack/react-query";

import { upload } from "../api/client";
import {
  keys,
  useCreateKnowledgeBase,
  useDeleteDocument,
  useDeleteKnowledgeBase,
  useDocuments,
  useKnowledgeBase,
  useKnowledgeBases,
  useQueryKnowledgeBase,
} from "../api/queries";
import type { KbDocument } from "../api/types";
import { useConfirm } from "../components/ConfirmDialog";
import { Empty, ErrorAlert, Field, Modal, PageHead, QueryTable, formatBytes, formatDate } from "../components/ui";
import { unplacedMessages } from "../lib/errors";

export function KnowledgeBasesPage() {
  const kbs = useKnowledgeBases();
  const [creating, setCreating] = useState(false);
  const navigate = useNavigate();
  return (
    <>
      <PageHead
        title="Knowledge bases"
        sub="Documents your agents search before they answer."
        actions={
          <button className="btn primary" onClick={() => setCreating(true)}>
            New knowledge base
          </button>
        }
      />
      <div className="card">
        <QueryTable
          query={kbs}
          what="knowledge bases"
          empty={
            <Empty title="No knowledge bases yet">
              <p>Create one, upload documents, then attach it to an agent.</p>
            </Empty>
          }
          columns={["Name", "Documents", "Embeddings", "Created"]}
        >
          {(k) => (
            <tr key={k.id} className="clickable" onClick={() => navigate(`/knowledge/${k.id}`)}>
              <td>
                <div className="cell-title">{k.name}</div>
                {k.description && <div className="cell-sub">{k.description}</div>}
              </td>
              <td>{k.document_count}</td>
              <td className="muted">{k.embedding_model}</td>
              <td className="muted">{formatDate(k.created_at)}</td>
            </tr>
          )}
        </QueryTable>
      </div>
      {creating && <CreateKnowledgeBase onClose={() => setCreating(false)} />}
    </>
  );
}

function CreateKnowledgeBase({ onClose }: { onClose: () => void }) {
  const create = useCreateKnowledgeBase();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    create.mutate(
      { name: name.trim(), description: description.trim() || null },
      { onSuccess: (kb) => navigate(`/knowledge/${kb.id}`) },
    );
  };
  return (
    <Modal
      title="New knowledge base"
      onClose={onClose}
      footer={
        <>
          <button className="btn" onClick={onClose}>
            Cancel
          </button>
          <button className="btn primary" onClick={() => submit()} disabled={create.isPending}>
            Create
          </button>
        </>
      }
    >
      <form onSubmit={submit} className="stack">
        <Field label="Name" htmlFor="kb-name" path="name" error={create.error}>
          <input id="kb-name" className="input" value={name} autoFocus onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field label="Description" htmlFor="kb-description" path="description" error={create.error} hint="Optional">
          <input id="kb-description" className="input" value={description} onChange={(e) => setDescription(e.target.value)} />
        </Field>
        <ErrorAlert error={create.error} extra={unplacedMessages(create.error, ["name", "description"])} />
      </form>
    </Modal>
  );
}

interface UploadState {
  key: number;
  name: string;
  fraction: number;
  error?: unknown;
}

let uploadSeq = 0;

const STATUS_BADGE: Record<KbDocument["status"], string> = {
  queued: "",
  processing: "amber",
  ready: "green",
  failed: "red",
};

function DocumentStatus({ doc }: { doc: KbDocument }) {
  const fraction = doc.chunks_total ? doc.chunks_embedded / doc.chunks_total : 0;
  return (
    <div className="stack" style={{ gap: 4, alignItems: "flex-start" }} data-testid="document-status">
      <span className={`badge ${STATUS_BADGE[doc.status]}`}>
        <span className="dot" />
        {doc.status === "ready" ? "Ingested" : doc.status === "failed" ? "Failed" : doc.status === "queued" ? "Queued" : "Embedding"}
      </span>
      {doc.status === "processing" && (
        <div className="progress" title={`${doc.chunks_embedded} of ${doc.chunks_total} chunks`}>
          <div style={{ width: `${fraction * 100}%` }} />
        </div>
      )}
      {doc.status === "failed" && doc.error && <span className="field-error">{doc.error}</span>}
    </div>
  );
}

export function KnowledgeBasePage() {
  const { id = "" } = useParams();
  const kb = useKnowledgeBase(id);
  const docs = useDocuments(id);
  const del = useDeleteDocument(id);
  const qc = useQueryClient();
  const navigate = useNavigate();
  const remove = useConfirm(
    useDeleteKnowledgeBase(),
    (kbId: string) => ({
      title: "Delete this knowledge base?",
      confirm: "Delete",
      text: "Its documents and their embeddings are deleted.",
      variables: kbId,
    }),
    () => navigate("/knowledge"),
  );
  const input = useRef<HTMLInputElement>(null);
  const [uploads, setUploads] = useState<UploadState[]>([]);
  const [over, setOver] = useState(false);

  async function send(files: FileList | File[]) {
    for (const file of Array.from(files)) {
      const key = ++uploadSeq;
      setUploads((u) => [...u, { key, name: file.name, fraction: 0 }]);
      const patch = (p: Partial<UploadState>) =>
        setUploads((u) => u.map((x) => (x.key === key ? { ...x, ...p } : x)));
      try {
        await upload(`/api/knowledge-bases/${id}/documents`, file, (fraction) => patch({ fraction }));
        setUploads((u) => u.filter((x) => x.key !== key));
      } catch (error) {
        patch({ error });
      }
      void qc.invalidateQueries({ queryKey: keys.documents(id) });
      void qc.invalidateQueries({ queryKey: keys.kbs });
    }
  }

  const crumbs = <Link to="/knowledge">Knowledge bases</Link>;
  if (kb.error) {
    return (
      <>
        <PageHead title="Knowledge base" crumbs={crumbs} />
        <ErrorAlert error={kb.error} />
      </>
    );
  }
  return (
    <>
      <PageHead
        title={kb.data?.name ?? "Knowledge base"}
        sub={kb.data?.description ?? undefined}
        crumbs={crumbs}
        actions={
          <button className="btn danger" onClick={() => remove.ask(id)}>
            Delete knowledge base
          </button>
        }
      />
      <div className="split">
        <div className="card">
          <div className="card-head">
            <div>
              <h2>Documents</h2>
              <p>TXT, Markdown, PDF, DOCX or HTML. Each is split into chunks and embedded.</p>
            </div>
          </div>
          <div className="card-body stack">
            <div
              className={`dropzone${over ? " over" : ""}`}
              onClick={() => input.current?.click()}
              onDragOver={(e) => {
                e.preventDefault();
                setOver(true);
              }}
              onDragLeave={() => setOver(false)}
              onDrop={(e) => {
                e.preventDefault();
                setOver(false);
                void send(e.dataTransfer.files);
              }}
            >
              <strong>Drop files here</strong> or <a>choose files</a>
              <input
                ref={input}
                type="file"
                multiple
                hidden
                data-testid="document-input"
                accept=".txt,.md,.markdown,.pdf,.docx,.html,.htm"
                onChange={(e) => {
                  if (e.target.files) void send(e.target.files);
                  e.target.value = "";
                }}
              />
            </div>
            {uploads.map((u) => (
              <div key={u.key} className="stack" style={{ gap: 4 }}>
                <div className="row small">
                  <span>{u.name}</span>
                  <span className="spacer" />
                  <span className="muted">{u.error ? "Upload failed" : `Uploading ${Math.round(u.fraction * 100)}%`}</span>
                </div>
                {u.error ? <ErrorAlert error={u.error} /> : (
                  <div className="progress" role="progressbar" aria-valuenow={Math.round(u.fraction * 100)}>
                    <div style={{ width: `${u.fraction * 100}%` }} />
                  </div>
                )}
              </div>
            ))}
          </div>
          <QueryTable
            query={docs}
            what="documents"
            empty={<Empty title="No documents yet" />}
            columns={["Document", "Status", "Chunks", ""]}
          >
            {(d) => (
              <tr key={d.id} data-testid="document-row">
                <td>
                  <div className="cell-title">{d.filename}</div>
                  <div className="cell-sub">
                    {formatBytes(d.size_bytes)} · {formatDate(d.created_at)}
                  </div>
                </td>
                <td>
                  <DocumentStatus doc={d} />
                </td>
                <td>{d.chunks_total || "—"}</td>
                <td className="actions">
                  <button className="btn sm danger" disabled={del.isPending} onClick={() => del.mutate(d.id)}>
                    Delete
                  </button>
                </td>
              </tr>
            )}
          </QueryTable>
          {del.error != null && (
            <div className="card-body">
              <ErrorAlert error={del.error} />
            </div>
          )}
        </div>
        <div className="stack">
          <QueryBox kbId={id} />
          {kb.data && (
            <div className="card card-body">
              <dl className="kv">
                <dt>Embedding model</dt>
                <dd>{kb.data.embedding_model}</dd>
                <dt>Chunk size</dt>
                <dd>{kb.data.chunk_size} characters, {kb.data.chunk_overlap} overlap</dd>
                <dt>Created</dt>
                <dd>{formatDate(kb.data.created_at)}</dd>
              </dl>
            </div>
          )}
        </div>
      </div>
      {remove.dialog}
    </>
  );
}

function QueryBox({ kbId }: { kbId: string }) {
  const query = useQueryKnowledgeBase(kbId);
  const [q, setQ] = useState("");
  const [topK, setTopK] = useState(3);
  return (
    <div className="card">
      <div className="card-head">
        <div>
          <h2>Test a question</h2>
          <p>What the agent would retrieve for it.</p>
        </div>
      </div>
      <form
        className="card-body stack"
        onSubmit={(e) => {
          e.preventDefault();
          query.mutate({ query: q, top_k: topK });
        }}
      >
        <Field label="Question" htmlFor="kb-query" path="query" error={query.error}>
          <input id="kb-query" className="input" value={q} placeholder="When is the museum open?" onChange={(e) => setQ(e.target.value)} />
        </Field>
        <div className="row">
          <label className="small muted" htmlFor="kb-topk">Chunks</label>
          <input id="kb-topk" className="input" style={{ width: 70 }} type="number" min={1} max={50} value={topK} onChange={(e) => setTopK(Number(e.target.value))} />
          <span className="spacer" />
          <button className="btn primary" type="submit" disabled={!q.trim() || query.isPending}>
            {query.isPending ? "Searching…" : "Search"}
          </button>
        </div>
        {query.error != null && <ErrorAlert error={query.error} extra={unplacedMessages(query.error, ["query"])} />}
        {query.data && (
          <div className="stack" style={{ gap: 8 }} data-testid="query-results">
            <div className="small muted">
              {query.data.chunks.length} chunk{query.data.chunks.length === 1 ? "" : "s"} in{" "}
              <strong>{query.data.retrieval_ms.toFixed(1)} ms</strong>
            </div>
            {query.data.chunks.map((c, i) => (
              <div className="chunk" key={i}>
                <div className="meta">
                  <span>{c.document_name}</span>
                  <span className="score">{c.score.toFixed(3)}</span>
                </div>
                <p>{c.text}</p>
              </div>
            ))}
          </div>
        )}
      </form>
    </div>
  );
}
