"""The store data the API serves: products, carts, checkouts, orders, customers."""
