"""The store's settings: name, support email, storefront URL, checkout hold, shopper token
lifetimes and the leaked-key response."""
