"""An assignment's cfg.xml Downloads: the settings its phones take only from cfg.xml.

The desired-state side (session.py) sends what differs by SetParameterValues; a setting the
phone's model and firmware take only from cfg.xml (an override's ``cfgxml_only``,
docs/files.md) cannot go that way, so the assignment's share of them goes in a cfg.xml
rendered for that phone (files/render.py) and offered like a job's (files/offers.py: the
file row is committed before the Download is sent; the URL is the phone's alone). The
CommandKey is the assignment's key and a tag of the transfer (``acs-des-3-r2.3fa9c1``,
desired/keys.py), so the phone's TransferComplete (TR-069 A.3.3.2), in a later session
and possibly after a reboot, names the assignment, its revision and exactly one file.

"Applied" means committed: the file's values become what the ACS knows of the phone, and
the row ``applied``, in one transaction before the TransferComplete is acknowledged (the
phone repeats an unacknowledged one; the file still live then says it was not acted on).
A transfer still out is waited for, never doubled: a file the phone fetched may be
installing. One never fetched for ``fetch_wait`` (the Download was lost with its session)
or fetched without a TransferComplete for ``transfer_timeout`` is ended here (the job
engine's check covers jobs only) and the next session offers a new one.

No Twisted here: ``store.call`` returns an awaitable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from acs_security.cwmp import messages as m
from acs_security.desired.keys import KEY_PREFIX, parse_transfer_key
from acs_security.files.offers import OfferError
from acs_security.files.render import render_device_file
from acs_security.mapping import Catalogue, MappingError, cfgxml_to_tr069, parse_cfgxml
from acs_security.policy.plan import FileSetting

__all__ = ["AssignmentFiles"]

#: Ended transfers of assignments kept per device (the rest are deleted at the next offer).
KEEP_ENDED = 10
#: Files' values memoised per (content, model, firmware): most phones of a model share a file.
_MEMO = 1024


class AssignmentFiles:
    """Offers, waits for and concludes the assignments' cfg.xml Downloads of the phones.

    ``offers`` is the server's FileOffers (None: this server offers no files, so such a
    setting faults with that reason)."""

    def __init__(self, offers: Any, *, store: Any, clock: Any, catalogue: Catalogue) -> None:
        self.offers = offers
        self._store = store
        self._clock = clock
        self._catalogue = catalogue
        self._values: dict[tuple[str | None, str, str | None], list[tuple[str, str, str]]] = {}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), UTC)

    async def out(self, device_id: str) -> dict[int, str]:
        """Assignment id -> why its Download to the device is waited for. Transfers that went
        quiet are ended first (module doc), so they no longer count."""
        if self.offers is None:
            return {}
        files = await self._store.call("live_files", device_id, kind="download", key_prefix=KEY_PREFIX)
        now = self._clock.seconds()
        out: dict[int, str] = {}
        for f in files:
            parsed = parse_transfer_key(f.command_key)
            if parsed is None:
                continue
            age = now - f.created_at.timestamp()
            if f.state == "offered" and (age >= self.offers.fetch_wait or f.expires_at.timestamp() <= now):
                # Withdrawn first: its URL answers 410 from now on, so a late fetch installs nothing.
                await self._store.call("finish_file", f.id, state="expired", detail="withdrawn: never fetched")
                continue
            if f.state == "fetched" and age >= self.offers.transfer_timeout:
                await self._store.call("finish_file", f.id, state="failed",
                                       detail=f"no TransferComplete within {self.offers.transfer_timeout:.0f} s")
                continue
            what = "fetched by the phone" if f.state == "fetched" else "offered"
            out[parsed[0]] = (f"cfg.xml Download (file {f.id}) {what}: waiting for its TransferComplete")
        return out

    async def offer(self, *, device_id: str, serial: str, product_class: str, firmware: str | None,
                    key: str, files: tuple[FileSetting, ...]) -> m.Download:
        """The Download of the phone's file of ``files`` (committed first). Raises
        OfferError, MappingError (the reason: no secret in it), StoreError."""
        if self.offers is None:
            raise OfferError("this server offers no files (set file_url or public_url)")
        content = render_device_file(files, product_class=product_class, software_version=firmware,
                                     catalogue=self._catalogue).content
        # Ended transfers of assignments have no job to be deleted with: the newest few stay
        # (what happened lately), the rest go.
        await self._store.call("prune_files", device_id, key_prefix=KEY_PREFIX, keep=KEEP_ENDED)
        download: m.Download = await self.offers.download(device_id=device_id, serial=serial, job_id=None,
                                                          job_key=key, content=content)
        return download

    async def file_of(self, device_id: str, command_key: str, *, live: bool = True) -> Any:
        """The device's download of that CommandKey (still live with ``live``), or None."""
        found = await self._store.call("device_file", device_id, kind="download", command_key=command_key)
        if found is None or (live and found.state not in ("offered", "fetched")):
            return None
        return found

    async def values(self, file_row: Any, product_class: str, firmware: str | None) -> list[tuple[str, str, str]]:
        """The file's settings as the TR-069 values the ACS then knows (name, value, type)."""
        key = (file_row.sha256, product_class, firmware)
        found = self._values.get(key)
        if found is not None:
            return found
        full = await self._store.call("get_file", file_row.id)
        if full is None or full.content is None:
            return []
        try:
            params = cfgxml_to_tr069(parse_cfgxml(full.content.encode("utf-8"), catalogue=self._catalogue),
                                     model=product_class, software_version=firmware, catalogue=self._catalogue)
        except MappingError:  # pragma: no cover - the ACS rendered and checked the file itself
            return []
        found = [(p.path, p.value, p.xsi_type) for p in params]
        if len(self._values) >= _MEMO:
            self._values.clear()
        self._values[key] = found
        return found

    async def finish(self, file_row: Any, fault: int, text: str) -> None:
        """The file's end, once the outcome is committed (a crash between the two leaves it
        live, so the phone's repeated TransferComplete does the same again)."""
        await self._store.call("finish_file", file_row.id, state="failed" if fault else "completed",
                               fault_code=fault or None, detail=text[:200] or None)

