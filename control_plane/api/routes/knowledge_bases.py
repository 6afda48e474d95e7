"""Knowledge bases: documents agents answer from, and retrieval over them.

One router per resource: the knowledge bases, their documents (upload checks included) and
retrieval are one resource of the API, hence a little over 300 lines."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, UploadFile, status
from fastapi.exceptions import RequestValidationError

from control_plane.api.deps import DbDep, KnowledgeBaseDep, KnowledgeDep, Offset
from control_plane.knowledge import crud
from control_plane.knowledge.errors import (
    KnowledgeError,
    UnreadableDocument,
    UnsupportedDocumentType,
    VectorStoreUnavailable,
)
from control_plane.knowledge.extraction import CONTENT_TYPES, check_signature, detect_format
from control_plane.knowledge.models import (
    DocumentPublic,
    DocumentsPublic,
    KnowledgeBase,
    KnowledgeBaseCreate,
    KnowledgeBasePublic,
    KnowledgeBasesPublic,
    KnowledgeBaseUpdate,
    Problem,
)
from control_plane.knowledge.service import KnowledgeService
from stimm.schema import KnowledgeQuery, KnowledgeQueryResult

logger = logging.getLogger("stimm.control_plane")

router = APIRouter(prefix="/knowledge-bases", tags=["knowledge bases"])

_READ_CHUNK = 1024 * 1024
QUEUE_FULL_RETRY_AFTER_S = 30

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "Not found"}}
QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"model": Problem, "description": "The embedding model has changed"},
    503: {"model": Problem, "description": "The vector store or embedding model is unavailable"},
}


def _not_found(kb_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Knowledge base {kb_id} not found")


def _document_not_found(document_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Document {document_id} not found")


def _invalid(field: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own, so clients handle one error format."""
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def _unavailable(error: KnowledgeError) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(error))


def _public(kb: KnowledgeBase, document_count: int) -> KnowledgeBasePublic:
    return KnowledgeBasePublic.model_validate({**kb.model_dump(), "document_count": document_count})


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_knowledge_base(
    db: DbDep, knowledge: KnowledgeDep, kb_in: KnowledgeBaseCreate
) -> KnowledgeBasePublic:
    """Create a knowledge base; its vectors use the control plane's embedding model."""
    kb = await crud.create_knowledge_base(
        db, kb_in, embedding_model=knowledge.embedder.name, embedding_dim=knowledge.embedder.dim
    )
    logger.info("knowledge base %s created", kb.id)
    return _public(kb, 0)


@router.get("")
async def list_knowledge_bases(
    db: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> KnowledgeBasesPublic:
    """List knowledge bases, newest first."""
    kbs, count = await crud.list_knowledge_bases(db, limit=limit, offset=offset)
    counts = await crud.document_counts(db, [kb.id for kb in kbs])
    items = [_public(kb, counts.get(kb.id, 0)) for kb in kbs]
    return KnowledgeBasesPublic(items=items, count=count)


@router.get("/{kb_id}", responses=_NOT_FOUND)
async def get_knowledge_base(db: DbDep, kb: KnowledgeBaseDep) -> KnowledgeBasePublic:
    """Get one knowledge base."""
    counts = await crud.document_counts(db, [kb.id])
    return _public(kb, counts.get(kb.id, 0))


@router.patch("/{kb_id}", responses=_NOT_FOUND)
async def update_knowledge_base(
    db: DbDep, kb: KnowledgeBaseDep, kb_in: KnowledgeBaseUpdate
) -> KnowledgeBasePublic:
    """Rename or re-describe a knowledge base, or change how new uploads are chunked."""
    size = kb_in.chunk_size if kb_in.chunk_size is not None else kb.chunk_size
    overlap = kb_in.chunk_overlap if kb_in.chunk_overlap is not None else kb.chunk_overlap
    for field in ("name", "chunk_size", "chunk_overlap"):
        if field in kb_in.model_fields_set and getattr(kb_in, field) is None:
            raise _invalid(field, f"{field} cannot be null")
    if overlap >= size:
        raise _invalid(
            "chunk_overlap", f"chunk_overlap ({overlap}) must be smaller than chunk_size ({size})"
        )
    kb = await crud.update_knowledge_base(db, kb, kb_in)
    counts = await crud.document_counts(db, [kb.id])
    return _public(kb, counts.get(kb.id, 0))


@router.delete(
    "/{kb_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **_NOT_FOUND,
        409: {"model": Problem, "description": "Agents still use it"},
        503: {"model": Problem, "description": "The vector store is unavailable"},
    },
)
async def delete_knowledge_base(db: DbDep, knowledge: KnowledgeDep, kb: KnowledgeBaseDep) -> None:
    """Delete a knowledge base, its documents and their vectors; refused (409) while agents
    use it."""
    agents = await crud.agents_using(db, kb.id)
    if agents:
        names = ", ".join(f"{a.name} ({a.id})" for a in agents)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"Knowledge base {kb.id} is attached to agents: {names}. "
            "Detach it from them first (set their knowledge_base_id to null).",
        )
    documents, _ = await crud.list_documents(db, kb.id, limit=1_000_000, offset=0)
    try:
        await knowledge.delete_knowledge_base_vectors(kb.id, [d.id for d in documents])
    except VectorStoreUnavailable as e:
        raise _unavailable(e) from e
    await crud.delete_knowledge_base(db, kb)
    logger.info("knowledge base %s deleted", kb.id)


# --- documents --------------------------------------------------------------------------------


@router.post(
    "/{kb_id}/documents",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"model": Problem, "description": "No such knowledge base"},
        409: {"model": Problem, "description": "The embedding model has changed"},
        413: {"model": Problem, "description": "The file is larger than the upload limit"},
        415: {"model": Problem, "description": "The file type is not supported"},
        429: {"model": Problem, "description": "The ingestion queue is full (see Retry-After)"},
    },
)
async def upload_document(
    db: DbDep, knowledge: KnowledgeDep, kb: KnowledgeBaseDep, file: UploadFile
) -> DocumentPublic:
    """Upload a TXT, Markdown, PDF, DOCX or HTML file; it is ingested in the background
    (watch ``status`` and ``chunks_embedded``/``chunks_total``)."""
    filename = (file.filename or "").replace("\x00", "").strip() or "document"
    try:
        fmt = detect_format(filename, file.content_type)
    except UnsupportedDocumentType as e:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=str(e)) from e
    data = await _read_limited(file, knowledge.settings.max_upload_bytes)
    if not data.strip():
        raise _invalid("file", f"The file {filename!r} is empty")
    try:
        check_signature(fmt, data)
    except UnreadableDocument as e:
        raise _invalid("file", str(e)) from e
    if kb.embedding_model != knowledge.embedder.name:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=_model_mismatch(kb, knowledge))
    await _check_queue_room(db, knowledge, kb)
    document = await crud.create_document(
        db,
        data,
        knowledge_base_id=kb.id,
        filename=filename[:255],
        content_type=CONTENT_TYPES[fmt],
        size_bytes=len(data),
    )
    knowledge.start()
    logger.info("document %s queued (%s, %d bytes)", document.id, fmt, len(data))
    return DocumentPublic.model_validate(document)


async def _check_queue_room(db: DbDep, knowledge: KnowledgeService, kb: KnowledgeBase) -> None:
    pending, in_kb = await crud.pending_counts(db, kb.id)
    settings = knowledge.settings
    if in_kb >= settings.max_queued_per_kb:
        full = f"Knowledge base {kb.id} already has {in_kb} documents waiting to be ingested"
    elif pending >= settings.max_queued:
        full = f"The ingestion queue is full ({pending} documents waiting)"
    else:
        return
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"{full}; retry in {QUEUE_FULL_RETRY_AFTER_S} s",
        headers={"Retry-After": str(QUEUE_FULL_RETRY_AFTER_S)},
    )


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    if file.size is not None and file.size > limit:
        raise _too_large(limit)
    data = bytearray()
    while chunk := await file.read(_READ_CHUNK):
        data += chunk
        if len(data) > limit:
            raise _too_large(limit)
    return bytes(data)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=f"The file is larger than the upload limit of {limit} bytes",
    )


def _model_mismatch(kb: KnowledgeBase, knowledge: KnowledgeService) -> str:
    return (
        f"Knowledge base {kb.id} was built with embedding model {kb.embedding_model!r}, "
        f"but the control plane runs {knowledge.embedder.name!r}"
    )


@router.get("/{kb_id}/documents", responses=_NOT_FOUND)
async def list_documents(
    db: DbDep,
    kb: KnowledgeBaseDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> DocumentsPublic:
    """List a knowledge base's documents with their ingestion status, oldest first."""
    documents, count = await crud.list_documents(db, kb.id, limit=limit, offset=offset)
    return DocumentsPublic(items=[DocumentPublic.model_validate(d) for d in documents], count=count)


@router.get("/{kb_id}/documents/{document_id}", responses=_NOT_FOUND)
async def get_document(db: DbDep, kb: KnowledgeBaseDep, document_id: str) -> DocumentPublic:
    """Get one document and its ingestion status and progress."""
    document = await crud.get_document(db, kb.id, document_id)
    if document is None:
        raise _document_not_found(document_id)
    return DocumentPublic.model_validate(document)


@router.delete(
    "/{kb_id}/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **_NOT_FOUND,
        503: {"model": Problem, "description": "The vector store is unavailable"},
    },
)
async def delete_document(
    db: DbDep, knowledge: KnowledgeDep, kb: KnowledgeBaseDep, document_id: str
) -> None:
    """Delete a document and its vectors (stopping its ingestion if it is still running)."""
    document = await crud.get_document(db, kb.id, document_id)
    if document is None:
        raise _document_not_found(document_id)
    try:
        await knowledge.delete_document_vectors(kb.id, document.id)
    except VectorStoreUnavailable as e:
        raise _unavailable(e) from e
    await crud.delete_document(db, document)
    logger.info("document %s deleted", document_id)


# --- retrieval --------------------------------------------------------------------------------


async def query(
    knowledge: KnowledgeService, kb: KnowledgeBase, body: KnowledgeQuery
) -> KnowledgeQueryResult:
    """Retrieval for the API's query route and the worker's (one code path)."""
    if kb.embedding_model != knowledge.embedder.name:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=_model_mismatch(kb, knowledge))
    try:
        return await knowledge.query(kb, body.query, body.top_k)
    except KnowledgeError as e:
        raise _unavailable(e) from e


@router.post("/{kb_id}/query", responses=QUERY_RESPONSES)
async def query_knowledge_base(
    knowledge: KnowledgeDep, kb: KnowledgeBaseDep, body: KnowledgeQuery
) -> KnowledgeQueryResult:
    """The chunks closest to a query, best first, with their scores and the retrieval time."""
    return await query(knowledge, kb, body)
