"""Usage statistics: counting API calls off the hot path, rollups, and what merchants see."""
