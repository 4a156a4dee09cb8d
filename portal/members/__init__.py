"""Team members: invitations, roles and removals of a store's members."""
