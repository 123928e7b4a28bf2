"""A test spawner whose start() can hang (a long PENDING spawn) and whose stop()
can be slow (a server "in the process of stopping").

The hub marks a server `pending: "spawn"` only while Spawner.start() has not
returned. Real spawners are slow in production (image pulls, volume attach); a
test needs that state to last for minutes, deterministically, without a cluster.
Users named in `SlowSpawner.delay_users` sleep `delay_seconds` in start();
everyone else gets an ordinary SimpleLocalProcessSpawner server (a real
jupyterhub-singleuser process). Users in `slow_stop_users` take
`slow_stop_seconds` to stop: meanwhile the hub answers DELETE /users/{name}
with 400 "in the process of stopping".
"""
import asyncio

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Integer, List, Unicode, default


class SlowSpawner(SimpleLocalProcessSpawner):
    delay_users = List(
        Unicode(),
        config=True,
        help="Users whose spawn stays pending for delay_seconds.",
    )
    delay_seconds = Integer(3600, config=True, help="How long a delayed spawn stays pending.")
    slow_stop_users = List(Unicode(), config=True, help="Users whose server takes slow_stop_seconds to stop.")
    slow_stop_seconds = Integer(5, config=True, help="Kept short: hub shutdown waits for it too.")

    @property
    def delayed(self):
        return self.user.name in self.delay_users

    @default("start_timeout")
    def _default_start_timeout(self):
        # The hub abandons a spawn after start_timeout (60 s by default) and the
        # pending state would vanish; keep it pending as long as we sleep.
        return self.delay_seconds + 60 if self.delayed else 60

    async def start(self):
        if self.delayed:
            self.log.info("hubtest: holding spawn of %s pending for %ss", self.user.name, self.delay_seconds)
            await asyncio.sleep(self.delay_seconds)
        return await super().start()

    async def poll(self):
        # While start() sleeps there is no process: report "running" so the hub
        # does not declare the pending server dead on a periodic poll.
        if self.delayed and self.pid == 0 and self._spawn_pending:
            return None
        return await super().poll()

    async def stop(self, now=False):
        if self.user.name in self.slow_stop_users:
            self.log.info("hubtest: stopping %s slowly (%ss)", self.user.name, self.slow_stop_seconds)
            await asyncio.sleep(self.slow_stop_seconds)
        return await super().stop(now=now)
