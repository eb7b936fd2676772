"""The EKS control plane and the Kubernetes provider every object of ours uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from . import catalog, validation
from .errors import ConfigError
from .options import child_options

DEFAULT_KUBERNETES_VERSION = "1.35"
OPEN_TO_THE_INTERNET = "0.0.0.0/0"
#: Access-entry modes; CONFIG_MAP alone is left out: it cannot use access entries.
AUTHENTICATION_MODES = ("API", "API_AND_CONFIG_MAP")


@dataclass(frozen=True, kw_only=True)
class GpuClusterArgs:
    """Inputs of :class:`GpuCluster`."""

    #: Name of the EKS cluster. Default: the component's resource name.
    cluster_name: str | None = None
    #: Kubernetes minor version; must be in EKS standard support. Default ``"1.35"``.
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    #: VPC for the cluster. Default ``None``: the account's default VPC in the region.
    vpc_id: pulumi.Input[str] | None = None
    #: Subnets (two or more AZs) for the control plane ENIs and the nodes. Default ``None``:
    #: the default VPC's default subnets in the AZs that offer ``gpu_instance_type``.
    subnet_ids: pulumi.Input[Sequence[str]] | None = None
    #: Instance type whose AZ offerings pick the default subnets. Default ``"g4dn.xlarge"``.
    gpu_instance_type: str = "g4dn.xlarge"
    #: CIDR blocks that may reach the public API endpoint. Default ``["0.0.0.0/0"]``
    #: (warned about: narrow it to your own address).
    public_access_cidrs: Sequence[str] = (OPEN_TO_THE_INTERNET,)
    #: How IAM principals are mapped to Kubernetes: ``"API"`` (access entries only) or
    #: ``"API_AND_CONFIG_MAP"`` (also the legacy aws-auth ConfigMap). Default ``"API"``.
    authentication_mode: str = "API"
    #: Serve the API on a public endpoint, limited to ``public_access_cidrs``. Default ``True``
    #: (``False``: reach the API only from inside the VPC).
    endpoint_public_access: bool = True
    #: Also serve the API on a private endpoint inside the VPC. Default ``True``.
    endpoint_private_access: bool = True
    #: Control-plane log types sent to CloudWatch. Default ``api``, ``audit``, ``authenticator``.
    cluster_log_types: Sequence[str] = ("api", "audit", "authenticator")
    #: Days CloudWatch keeps those logs; the log group is ours, so ``destroy`` removes it.
    #: Default 30.
    log_retention_days: int = 30
    #: KMS key ARN that envelope-encrypts Kubernetes secrets. Default ``None``: a key is
    #: created (rotation on, 7-day deletion window).
    kms_key_arn: pulumi.Input[str] | None = None
    #: Tags for every AWS resource. Default none.
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The day against which EKS standard support is checked. Default: today.
    today: dt.date | None = None

    def validate(self) -> None:
        if self.cluster_name is not None:
            validation.matches(
                "cluster_name",
                self.cluster_name,
                validation.EKS_CLUSTER_NAME,
                "a valid EKS cluster name (letters, digits, - and _, at most 100)",
            )
        supported = catalog.versions_in_standard_support(self.today or dt.date.today())
        validation.one_of(
            "kubernetesVersion",
            self.kubernetes_version,
            supported,
            "is not in EKS standard support (extended support costs 6x per hour)",
        )
        validation.one_of(
            "gpuInstanceType", self.gpu_instance_type, catalog.G4DN, "is not a g4dn type we support"
        )
        validation.one_of("authentication_mode", self.authentication_mode, AUTHENTICATION_MODES)
        validation.cidrs("publicAccessCidrs", self.public_access_cidrs)
        validation.boolean("endpoint_public_access", self.endpoint_public_access)
        validation.boolean("endpoint_private_access", self.endpoint_private_access)
        if not (self.endpoint_public_access or self.endpoint_private_access):
            raise ConfigError("endpoint_public_access and endpoint_private_access are both off")
        validation.integer("log_retention_days", self.log_retention_days, 1)
        validation.one_of("log_retention_days", self.log_retention_days, catalog.LOG_RETENTION_DAYS)
        for i, log_type in enumerate(self.cluster_log_types):
            validation.one_of(f"cluster_log_types[{i}]", log_type, catalog.EKS_LOG_TYPES)
        validation.string_map("tags", self.tags)
        given = self.subnet_ids
        if (
            given is not None
            and validation.is_known(given)
            and (isinstance(given, str) or not isinstance(given, Sequence) or len(given) < 2)
        ):
            raise ConfigError(f"subnet_ids needs two or more subnets, got {self.subnet_ids!r}")


class GpuCluster(pulumi.ComponentResource):
    """An EKS cluster with no default node group, API access entries and encrypted secrets.

    ``provider`` is the Kubernetes provider built from its kubeconfig: pass it to every
    Kubernetes object so nothing falls back to an ambient kubeconfig.
    """

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[Sequence[str]]
    provider: k8s.Provider

    def __init__(
        self, name: str, args: GpuClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        if args.endpoint_public_access and OPEN_TO_THE_INTERNET in validation.cidrs(
            "publicAccessCidrs", args.public_access_cidrs
        ):
            pulumi.log.warn(
                "publicAccessCidrs includes 0.0.0.0/0: the cluster's API endpoint is reachable "
                "from the whole internet. Set eks-gpu-sharing:publicAccessCidrs to your own "
                'address (e.g. ["203.0.113.7/32"]).'
            )
        super().__init__("eks-gpu-sharing:index:GpuCluster", name, None, opts)
        child = child_options(self, opts)
        cluster_name = args.cluster_name or name

        vpc_id = args.vpc_id or aws.ec2.get_vpc_output(default=True, opts=self._invoke()).id
        subnet_ids = args.subnet_ids or self._default_subnets(vpc_id, args.gpu_instance_type)

        kms_key_arn = args.kms_key_arn
        if kms_key_arn is None:
            key = aws.kms.Key(
                f"{name}-secrets",
                description=f"Envelope encryption of Kubernetes secrets in EKS {cluster_name}",
                enable_key_rotation=True,
                deletion_window_in_days=7,
                tags=dict(args.tags),
                opts=child,
            )
            kms_key_arn = key.arn

        # EKS writes control-plane logs here but never deletes the group: creating it
        # ourselves gives it a retention and lets `destroy` remove it after the cluster.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/aws/eks/{cluster_name}/cluster",
            retention_in_days=args.log_retention_days,
            tags=dict(args.tags),
            opts=child,
        )
        self._eks = eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            version=args.kubernetes_version,
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            skip_default_node_group=True,
            authentication_mode=eks.AuthenticationMode(args.authentication_mode),
            endpoint_private_access=args.endpoint_private_access,
            endpoint_public_access=args.endpoint_public_access,
            public_access_cidrs=list(args.public_access_cidrs),
            enabled_cluster_log_types=list(args.cluster_log_types),
            encryption_config_key_arn=kms_key_arn,
            create_oidc_provider=False,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[log_group])
            ),
        )
        # Derived from a cluster output so that whatever uses the name waits for the cluster.
        self.cluster_name = pulumi.Output.unsecret(
            self._eks.kubeconfig_json.apply(lambda _: cluster_name)
        )
        self.kubeconfig = pulumi.Output.secret(self._eks.kubeconfig_json)
        self.vpc_id = pulumi.Output.from_input(vpc_id)
        self.subnet_ids = pulumi.Output.from_input(subnet_ids)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self._eks.kubeconfig_json,
            enable_config_map_mutable=True,  # data changes update in place (docs/security.md)
            enable_server_side_apply=True,
            # `destroy` after the cluster is already gone drops these objects from state
            # instead of failing on an unreachable API server.
            delete_unreachable=True,
            opts=child,
        )
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "vpcId": self.vpc_id,
                "subnetIds": self.subnet_ids,
            }
        )

    def _invoke(self) -> pulumi.InvokeOutputOptions:
        return pulumi.InvokeOutputOptions(parent=self)

    def _default_subnets(self, vpc_id: pulumi.Input[str], instance_type: str) -> pulumi.Output:
        """Default subnets only in AZs that offer the GPU type: g4dn is not in every AZ."""
        offerings = aws.ec2.get_instance_type_offerings_output(
            location_type="availability-zone",
            filters=[{"name": "instance-type", "values": [instance_type]}],
            opts=self._invoke(),
        )

        def subnets_in(vpc_and_azs: list[Any]) -> Any:
            vpc, azs = vpc_and_azs
            return aws.ec2.get_subnets_output(
                filters=[
                    {"name": "vpc-id", "values": [vpc]},
                    {"name": "default-for-az", "values": ["true"]},
                    {"name": "availability-zone", "values": azs},
                ],
                opts=self._invoke(),
            ).ids

        def two_or_more(ids: list[str]) -> list[str]:
            if len(ids) < 2:
                raise ConfigError(
                    f"the default VPC has {len(ids)} default subnet(s) in AZs that offer "
                    f"{instance_type}; EKS needs two AZs. Give subnet_ids, or pick another "
                    "gpuInstanceType or region"
                )
            return sorted(ids)

        ids: pulumi.Output[list[str]] = pulumi.Output.all(vpc_id, offerings.locations).apply(
            subnets_in
        )
        return ids.apply(two_or_more)
