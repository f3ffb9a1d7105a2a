"""The node's HTTP edge: what a client may cost before a request reaches a route.

The API shares its process and event loop with the consensus driver, so every limit
here is cheap and enforced as bytes and connections arrive: body sizes while the body
streams (`body`), requests per client (`ratelimit`), connections, their idle time and
the descriptors they hold (`connections`), and the uvicorn server built with all of
them (`server`). The settings are `nodes.config.ApiLimits` (`[api]` in node.toml).
"""
