"""AL2023 GPU nodes whose NVIDIA toolkit ignores ``NVIDIA_VISIBLE_DEVICES``, in EC2 user data.

The EKS AL2023 NVIDIA AMI installs the NVIDIA container toolkit with its defaults, which hand
every GPU to an unprivileged container whose environment (or image) says
``NVIDIA_VISIBLE_DEVICES=all``. A shell script in the launch template's user data turns that
off and lets the device plugin's ``volume-mounts`` device list through instead, before the
node starts any pod (docs/security.md, "Slices are the only way to a GPU").
"""

# Sources:
# - The settings and their defaults (true, false): NVIDIA/nvidia-container-toolkit
#   api/config/v1/config.go (Config, toml keys), api/config/v1/toml.go; how they pick a
#   container's devices: internal/config/image/cuda_image.go (VisibleDevices); read by the
#   runtime (internal/runtime/runtime_factory.go) and the hook
#   (cmd/nvidia-container-runtime-hook/container_config.go) at each container's creation.
# - The file and the command: config.go RelativeFilePath under /etc;
#   cmd/nvidia-ctk/config/config.go (--config-file, --set key=value, --in-place). The AMI
#   installs nvidia-container-toolkit (awslabs/amazon-eks-ami
#   templates/al2023/provisioners/install-nvidia-driver.sh), which requires
#   nvidia-container-toolkit-base, the package of /usr/bin/nvidia-ctk and whose %post writes
#   that file (nvidia-container-toolkit packaging/rpm/SPECS/nvidia-container-toolkit.spec).
# - When it runs: nodeadm-config.service runs Before=cloud-init.service and skips the run
#   phase; nodeadm-run.service, After=cloud-final.service (where cloud-init runs user-data
#   scripts), restarts containerd and starts kubelet (amazon-eks-ami
#   templates/al2023/runtime/rootfs/etc/systemd/system/nodeadm-*.service,
#   nodeadm/cmd/nodeadm/init/init.go runDaemons, nodeadm/internal/kubelet/daemon.go); the AMI
#   enables only the nodeadm units, not kubelet (templates/al2023/provisioners/
#   install-nodeadm.sh). So no pod starts before the script has run.
# - The format: managed node groups without a custom AMI take MIME multi-part user data on
#   Amazon Linux and merge EKS's own NodeConfig into it (awsdocs/amazon-eks-user-guide
#   latest/ug/nodes/launch-templates.adoc, "Amazon Linux 2023 user data"); nodeadm reads only
#   its application/node.eks.aws parts (nodeadm/internal/configprovider/mime.go).
# - botocore's ec2 model, RequestLaunchTemplateData.UserData: base64-encoded, at most 16 KB.

from __future__ import annotations

import base64
import shlex
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

#: The toolkit's config file on the AMI.
TOOLKIT_CONFIG = "/etc/nvidia-container-runtime/config.toml"
#: What we set in it: no GPU by env var to unprivileged containers; the device plugin's
#: volume-mounts device list instead.
TOOLKIT_SETTINGS = {
    "accept-nvidia-visible-devices-envvar-when-unprivileged": "false",
    "accept-nvidia-visible-devices-as-volume-mounts": "true",
}
#: Fixed, so the same script gives the same template version and does not roll the nodes.
BOUNDARY = "==eks-gpu-sharing=="


def script() -> str:
    """The shell script. If it fails, cloud-init logs it and the node still joins, open:
    ``verify``'s check ``no-slice-no-gpu`` is what reports that."""
    sets = " ".join(f"--set {shlex.quote(f'{k}={v}')}" for k, v in TOOLKIT_SETTINGS.items())
    return (
        "#!/bin/bash\n"
        "set -euo pipefail\n"
        f"nvidia-ctk config --config-file={shlex.quote(TOOLKIT_CONFIG)} --in-place {sets}\n"
    )


def user_data() -> str:
    """The launch template's UserData: a MIME multi-part archive with the script, base64."""
    archive = MIMEMultipart("mixed", boundary=BOUNDARY)
    archive.attach(MIMEText(script(), "x-shellscript", "us-ascii"))
    return base64.b64encode(archive.as_bytes()).decode()
