"""Who a request is: token verification and the identity provider's keys."""
