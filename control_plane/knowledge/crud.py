"""Database access for knowledge bases and documents: plain functions taking a session."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.knowledge.models import (
    Document,
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


async def create_document(db: AsyncSession, **fields: Any) -> Document:
    document = Document(**fields)
    db.add(document)
    await db.commit()
    return document


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
