"""The worked example's composition root: the shop's two apps, handed to the gateway.

The only package that imports both stacks (`legacy_flask`, `v2_fastapi`) and the gateway.
`gateway serve` without apps of a team's serves this pair (`shop.pair:ShopPair`); the
`shop` command prepares its database and runs its carrier stand-in.
"""
