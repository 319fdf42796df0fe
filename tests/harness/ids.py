"""Instance ids the plugin refuses and accepts (issue 18), shared by the unit and integration tests."""

ID_RULE = "must be a UUID in canonical form (8-4-4-4-12 lowercase hexadecimal digits)"
# Ids the old rule (lowercase hex and dashes, 8 to 64 characters) let through, or that are a
# UUID in another spelling: the public server answers 204 to some and counts none of them.
REFUSED_IDS = [
    "0123456789abcdef",  # hex without dashes, as the issue measured
    "0123456789abcdef0123456789abcdef",  # uuid.hex: the right digits, no dashes
    "0123abcd-4567-4890-abcd-0123456789ab-0123",  # a UUID with more after it
    "0123abcd4567-4890-abcd-0123456789ab",  # one dash missing
    "0123abcd-4567-4890-abcd-0123456789a",  # one digit short
    "0123ABCD-4567-4890-ABCD-0123456789AB",  # uppercase: nginx's location takes lowercase only
    "{0123abcd-4567-4890-abcd-0123456789ab}",
    "urn:uuid:0123abcd-4567-4890-abcd-0123456789ab",
    " 0123abcd-4567-4890-abcd-0123456789ab ",  # sent as is, the spaces would be in the path
    "0123abcd-4567-4890-abcd-0123456789ab\n",
    "0123abcd-4567-4890-abcg-0123456789ab",  # not hex
    "my-printer-01",
]
CANONICAL_IDS = ["0123abcd-4567-4890-abcd-0123456789ab", "6f1c9a3e-2b7d-4c1a-9e8f-0a1b2c3d4e5f"]
