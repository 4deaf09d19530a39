"""Fast models (Johnson et al. 2016): a feed-forward network trained once per style,
then any photo painted in one forward pass. ``network`` is the network, ``train`` the
training loop, ``model_file`` the safetensors files, ``apply`` inference in tiles and
``export`` ONNX."""
