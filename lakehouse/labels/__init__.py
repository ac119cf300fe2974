"""Human labels with Label Studio: the images worth labelling exported as tasks (the classifier's outputs as
pre-annotations, least confident first), the labelling config that goes with them, and their URLs."""
