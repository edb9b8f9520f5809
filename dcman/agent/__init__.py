"""The subcloud side of the agent protocol: the real agent (`dcman agent`) and the fleet
simulator (`dcman sim`), which share one minimal asyncio HTTP server and one protocol handler.

Modules:
  http         the HTTP/1.1 server on raw asyncio (keep-alive, Content-Length bodies, JSON)
  credentials  the subcloud credential (HTTP Basic, user `sysadmin`)
  subcloud     the compact per-subcloud state and its status / alarm documents
  phases       the phase state machine (install, bootstrap, config, rehome)
  commands     phases run by an operator-given command in a subprocess (real agent)
  protocol     the agent protocol routes (`/v1/...`), shared by the agent and the simulator
  addressing   the simulator's fixed addressing: index <-> name <-> loopback address
  fleet        the simulated fleet: lazily created subcloud states and their faults
  control      the simulator's control API (`/sim/...`)
  runtime      the process entry points: run one agent, run the simulator
"""
