"""The randomized fault soak: the example shop under load while a seeded schedule breaks things.

Two halves live here. The Django side is an app (:mod:`.apps`) that the soak's processes load
through :mod:`.settings`, which serves the example project (``example/shop_project``) with one
more view and the consumers' handlers. The pytest side (:mod:`.rig`, :mod:`.load`,
:mod:`.schedule`, :mod:`.check`) starts the services and processes, feeds the web server,
injects the faults and checks what arrived; it never imports the Django side.
"""

#: The event types of one soak order, in the order the view publishes them under the order's key.
ORDER_STEPS = ("order.created", "order.paid", "order.shipped")
#: What a request that rolls back on purpose puts in the customer address, to be recognised.
ROLLBACK_MARK = "rollback-"
