"""``/erasures`` in the serving process: request an erasure, follow it, read its report (admin scope).

Why the request returns at once (202) and the erasure runs in the stage: the request is durable on the
erasure ledger before anything is deleted, so a crash half-way is finished after the restart. The CLI
(``touchstream erase``) polls ``GET /erasures/{id}`` until it is done.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from touchstream.processors.erasure_stage import ErasureStage
from touchstream.processors.outages import outage_of
from touchstream.serving.access import Caller, require

MAX_SUBJECT = 320   # the longest identifier an event may carry (an e-mail address)


class ErasureRequest(BaseModel):
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT,
                         description="an identifier (kind:value, or as written) or a canonical customer id")


def erasure_router(stage: ErasureStage, keys=None, audit=None) -> APIRouter:
    admin = require("admin", keys)
    router = APIRouter()

    @router.post("/erasures", status_code=202)
    def request(body: ErasureRequest, caller: Caller = Depends(admin)) -> dict:
        """Ask for the person to be forgotten; the answer's ``erasure_id`` follows it."""
        try:
            erasure_id = stage.request(body.subject, requested_by=caller.system)
        except ValueError as exc:
            raise HTTPException(422, f"subject: {exc}") from None
        except Exception as exc:
            if outage_of(exc, rerunnable=True) is None:
                raise
            raise HTTPException(503, f"the erasure could not be recorded on the broker ({exc}); nothing was erased") from None
        return {"erasure_id": erasure_id, "state": "requested"}

    @router.get("/erasures/{erasure_id}", dependencies=[Depends(admin)])
    def status(erasure_id: str) -> dict:
        """``requested`` until the stage carried it out, then what was erased (no personal value)."""
        row = stage.status(erasure_id)
        if row is not None:
            return {**_public(row), "state": "erased"}
        if stage.pending(erasure_id):
            return {"erasure_id": erasure_id, "state": "requested"}
        raise HTTPException(404, f"no erasure {erasure_id} was requested through this process or carried out")

    if audit is not None:
        @router.get("/erasures/{erasure_id}/report", dependencies=[Depends(admin)])
        def report(erasure_id: str) -> dict:
            """Search every copy for the person (``touchstream erase --report``)."""
            row = stage.status(erasure_id)
            if row is None:
                raise HTTPException(404, f"erasure {erasure_id} has not been carried out here")
            return audit(row)

    return router


def _public(row: dict) -> dict:
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items() if k != "refs"}
    out["rows_by_table"] = json.loads(row["rows_by_table"])
    return out
