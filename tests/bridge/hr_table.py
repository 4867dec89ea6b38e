"""The sql-hr-table preset's legacy table `hr_staff`, as its header defines it (no unique
index on the login, no foreign key on the manager), on a database of a test's own, and
direct access to what it holds."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from scim_client import USER_SCHEMA
from sqlalchemy.ext.asyncio import create_async_engine

HR_STAFF = """
CREATE TABLE hr_staff (
  employee_id   VARCHAR(32) PRIMARY KEY,
  login         VARCHAR(64) NOT NULL,
  personnel_no  VARCHAR(16),
  first_name    VARCHAR(100),
  last_name     VARCHAR(100),
  job_title     VARCHAR(100),
  dept_code     VARCHAR(10),
  manager_id    VARCHAR(32),
  status_code   CHAR(3),
  mail_aliases  VARCHAR(500),
  hire_date     VARCHAR(10),
  record_source VARCHAR(10),
  last_change   {timestamp}
)
"""


async def execute(url: str, statement: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def create_hr_staff(url: str, backend: str) -> None:
    timestamp = "TIMESTAMP" if backend == "postgresql" else "DATETIME NULL"
    await execute(url, HR_STAFF.format(timestamp=timestamp))


async def rows(url: str, query: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return list(await connection.execute(sa.text(query)))
    finally:
        await engine.dispose()


def user(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}
