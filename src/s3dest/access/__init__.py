"""Who may do what, and what they did: API keys (`apikeys`), the audit log (`audit`) and the
throttling of failed authentication (`throttle`). Shared by the API, the CLI and the
dashboard; below them, above the store."""
