"""The migration dashboard at `/_gateway`, its session, and the landing page at `/`."""
