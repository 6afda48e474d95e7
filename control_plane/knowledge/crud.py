"""Database access for knowledge bases and documents: plain functions taking a session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.knowledge.models import (
    Document,
    DocumentFile,
    DocumentStatus,
    KnowledgeBase,
    KnowledgeBaseCreate,
    KnowledgeBaseUpdate,
)
from control_plane.models import Agent, utcnow


async def create_knowledge_base(
    db: AsyncSession, kb_in: KnowledgeBaseCreate, *, embedding_model: str, embedding_dim: int
) -> KnowledgeBase:
    kb = KnowledgeBase.model_validate(
        kb_in, update={"embedding_model": embedding_model, "embedding_dim": embedding_dim}
    )
    db.add(kb)
    await db.commit()
    return kb


async def get_knowledge_base(db: AsyncSession, kb_id: str) -> KnowledgeBase | None:
    return await db.get(KnowledgeBase, kb_id)


async def list_knowledge_bases(
    db: AsyncSession, *, limit: int, offset: int
) -> tuple[list[KnowledgeBase], int]:
    count = (await db.exec(select(func.count()).select_from(KnowledgeBase))).one()
    statement = (
        select(KnowledgeBase)
        .order_by(col(KnowledgeBase.created_at).desc())
        .offset(offset)
        .limit(limit)
    )
    return list((await db.exec(statement)).all()), count


async def document_counts(db: AsyncSession, kb_ids: list[str]) -> dict[str, int]:
    if not kb_ids:
        return {}
    statement = (
        select(Document.knowledge_base_id, func.count())
        .where(col(Document.knowledge_base_id).in_(kb_ids))
        .group_by(col(Document.knowledge_base_id))
    )
    return dict((await db.exec(statement)).all())


async def update_knowledge_base(
    db: AsyncSession, kb: KnowledgeBase, kb_in: KnowledgeBaseUpdate
) -> KnowledgeBase:
    kb.sqlmodel_update(kb_in.model_dump(exclude_unset=True))
    kb.updated_at = utcnow()
    db.add(kb)
    await db.commit()
    return kb


async def agents_using(db: AsyncSession, kb_id: str) -> list[Agent]:
    statement = select(Agent).where(Agent.knowledge_base_id == kb_id).order_by(col(Agent.name))
    return list((await db.exec(statement)).all())


async def delete_knowledge_base(db: AsyncSession, kb: KnowledgeBase) -> None:
    await db.delete(kb)
    await db.commit()


async def create_document(db: AsyncSession, data: bytes, **fields: Any) -> Document:
    """A ``queued`` document and its uploaded bytes, in one transaction."""
    document = Document(**fields)
    db.add(document)
    db.add(DocumentFile(document_id=document.id, data=data))
    await db.commit()
    return document


async def get_document_data(db: AsyncSession, document_id: str) -> bytes | None:
    file = await db.get(DocumentFile, document_id)
    return None if file is None else file.data


async def delete_document_data(db: AsyncSession, document_id: str) -> None:
    file = await db.get(DocumentFile, document_id)
    if file is not None:
        await db.delete(file)
        await db.commit()


PENDING: tuple[DocumentStatus, ...] = ("queued", "processing")


async def pending_counts(db: AsyncSession, kb_id: str) -> tuple[int, int]:
    """Documents waiting or in progress: in all, and in knowledge base ``kb_id``."""
    statement = (
        select(Document.knowledge_base_id, func.count())
        .where(col(Document.status).in_(PENDING))
        .group_by(col(Document.knowledge_base_id))
    )
    counts: dict[str, int] = dict((await db.exec(statement)).all())
    return sum(counts.values()), counts.get(kb_id, 0)


async def next_queued(db: AsyncSession, after_kb_id: str | None) -> Document | None:
    """The oldest queued document of the knowledge base that comes after ``after_kb_id`` in
    id order (wrapping around): round-robin over the knowledge bases with queued documents."""
    statement = (
        select(Document.knowledge_base_id)
        .where(Document.status == "queued")
        .distinct()
        .order_by(col(Document.knowledge_base_id))
    )
    kb_ids = list((await db.exec(statement)).all())
    if not kb_ids:
        return None
    kb_id = next((k for k in kb_ids if after_kb_id is None or k > after_kb_id), kb_ids[0])
    oldest = (
        select(Document)
        .where(Document.knowledge_base_id == kb_id, Document.status == "queued")
        .order_by(col(Document.created_at))
        .limit(1)
    )
    return (await db.exec(oldest)).first()


async def stale_processing(db: AsyncSession, beat_before: datetime) -> Document | None:
    """A document left ``processing`` by a control plane that stopped beating before then."""
    statement = (
        select(Document)
        .where(Document.status == "processing", col(Document.updated_at) < beat_before)
        .order_by(col(Document.updated_at))
        .limit(1)
    )
    return (await db.exec(statement)).first()


async def claim_document(
    db: AsyncSession, document: Document, *, beat_before: datetime | None = None
) -> Document | None:
    """Take ``document`` for ingestion (``processing``, one more attempt) unless another
    control plane took it first; a ``processing`` one only if its heartbeat is older than
    ``beat_before``."""
    statement = update(Document).where(
        col(Document.id) == document.id, col(Document.status) == document.status
    )
    if beat_before is not None:
        statement = statement.where(col(Document.updated_at) < beat_before)
    result = await db.exec(
        statement.values(
            status="processing", attempts=col(Document.attempts) + 1, updated_at=utcnow()
        )
    )
    await db.commit()
    if result.rowcount != 1:
        return None
    await db.refresh(document)
    return document


async def ready_document_ids(db: AsyncSession, document_ids: set[str]) -> set[str]:
    statement = select(Document.id).where(
        col(Document.id).in_(document_ids), Document.status == "ready"
    )
    return set((await db.exec(statement)).all())


async def get_document(db: AsyncSession, kb_id: str, document_id: str) -> Document | None:
    document = await db.get(Document, document_id)
    if document is None or document.knowledge_base_id != kb_id:
        return None
    return document


async def list_documents(
    db: AsyncSession, kb_id: str, *, limit: int, offset: int
) -> tuple[list[Document], int]:
    where = Document.knowledge_base_id == kb_id
    count = (await db.exec(select(func.count()).select_from(Document).where(where))).one()
    statement = (
        select(Document).where(where).order_by(col(Document.created_at)).offset(offset).limit(limit)
    )
    return list((await db.exec(statement)).all()), count


async def update_document(db: AsyncSession, document_id: str, **fields: Any) -> Document | None:
    """Set ``fields`` on a document; ``None`` when it was deleted meanwhile."""
    document = await db.get(Document, document_id)
    if document is None:
        return None
    document.sqlmodel_update({**fields, "updated_at": utcnow()})
    db.add(document)
    await db.commit()
    return document


async def delete_document(db: AsyncSession, document: Document) -> None:
    await db.delete(document)
    await db.commit()
