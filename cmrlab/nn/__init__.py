"""Neural networks: building blocks, the model zoo, losses, metrics and receptive fields.

``receptive_field``  output sizes, receptive fields and parameter counts (Part IV)
``blocks``           small shared blocks (conv-BN-activation, double conv, up-conv, pyramid pooling)
``models``           every model of the sources, one file per family
``registry``         the zoo by name with sources and parameter counts; model cards
``losses``           CE, Dice, generalised Dice, the thesis's Eq 6.1 / 7.1 / 7.2, focal, Tversky
``metrics``          Dice, surface distances in mm, volumes and biomarkers, frames, agreement

Import from the module, e.g. ``from cmrlab.nn.losses import GeneralizedDiceLoss``.
"""
