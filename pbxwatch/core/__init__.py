"""The pure core: AMI events in, call records out.

Nothing in this package does I/O, touches asyncio or reads a clock: time
arrives with the events (or with an explicit tick), so a recorded day
replays in seconds and every decision can be unit-tested.
"""
