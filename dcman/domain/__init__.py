"""The rules of the mission: entities, states and the checks on them. No I/O here."""
