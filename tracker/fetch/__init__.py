"""Getting a page: HTTP with retries and validators, the transport, the headless browser fallback,
robots.txt, bot walls, guards against flips and shrinks.
"""
