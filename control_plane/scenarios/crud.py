"""Reading and writing an agent's scenario file and its last run."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.models import utcnow
from control_plane.scenarios.models import AgentScenarios
from stimm.scenarios import SuiteResult


async def get_scenarios(db: AsyncSession, agent_id: str) -> AgentScenarios | None:
    return await db.get(AgentScenarios, agent_id)


async def save_scenarios(db: AsyncSession, agent_id: str, yaml: str) -> AgentScenarios:
    """Store the file; a changed file forgets the last run (it was of another file)."""
    row = await db.get(AgentScenarios, agent_id)
    if row is None:
        row = AgentScenarios(agent_id=agent_id, yaml=yaml)
    elif row.yaml != yaml:
        row.yaml = yaml
        row.last_run = None
        row.last_run_at = None
    row.updated_at = utcnow()
    db.add(row)
    await db.commit()
    return row


async def record_run(
    db: AsyncSession, agent_id: str, yaml: str, result: SuiteResult
) -> AgentScenarios | None:
    """Keep ``result`` as the last run, unless the file changed while it ran."""
    row = await db.get(AgentScenarios, agent_id)
    if row is None or row.yaml != yaml:
        return row
    row.last_run = result.model_dump(mode="json")
    row.last_run_at = utcnow()
    db.add(row)
    await db.commit()
    return row
