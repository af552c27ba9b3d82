"""What a marketer checks before a real email goes out: :mod:`.preview` (one step for one lead,
and the test send) and :mod:`.simulate` (a lead's whole timeline through a campaign, nothing
written). Both render through :func:`dripengine.sending.compose.compose`, as the daemon does."""
