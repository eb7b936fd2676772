"""The EKS control plane and the Kubernetes provider every object of ours uses."""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from . import catalog, kubernetes_versions, validation
from .errors import ConfigError
from .options import child_options

OPEN_TO_THE_INTERNET = "0.0.0.0/0"
#: Access-entry modes; CONFIG_MAP alone is left out: it cannot use access entries.
AUTHENTICATION_MODES = ("API", "API_AND_CONFIG_MAP")
#: What EKS does when a version's standard support ends (botocore eks model, SupportType):
#: STANDARD upgrades the cluster, EXTENDED keeps it at 6x the hourly price.
SUPPORT_TYPES = ("STANDARD", "EXTENDED")
#: AZ IDs where EKS refuses cluster subnets, by region (awsdocs/amazon-eks-user-guide,
#: latest/ug/networking/network-reqs.adoc, "Subnet requirements for clusters"). AZ names
#: map to different IDs in each account, so the rule is applied to IDs.
EKS_UNSUPPORTED_AZ_IDS: dict[str, tuple[str, ...]] = {
    "us-east-1": ("use1-az3",),
    "us-west-1": ("usw1-az2",),
    "ca-central-1": ("cac1-az3",),
}
#: Run by ``destroy`` after the node groups are gone and just before the cluster is deleted:
#: turn control-plane logging off and wait until EKS has applied it. Expected effect: EKS
#: has no log streams left to write once the cluster is gone, so it does not re-create the
#: log group after we delete it (terraform-aws-eks #920/#2486/#2763 show the re-creation,
#: not this cure; tests/test_live.py's leftover check confirms it on a real account; see
#: docs/security.md). The AWS CLI says why it refused as "An error occurred (<code>) ...".
#: Two refusals leave nothing to do: the cluster is already gone (ResourceNotFoundException,
#: botocore eks model UpdateClusterConfig errors) or logging is already off
#: (InvalidParameterException "No changes needed for the logging config provided":
#: aws-quickstart/quickstart-amazon-eks-cluster-resource-provider#38, aws/aws-cdk#19898).
#: Any other failure (no CLI, expired credentials, throttling, an update in progress) fails
#: the destroy with the CLI's message rather than leak the log group. ``--profile`` and
#: ``--region`` go on the command line: AWS_PROFILE can be overridden by ambient credentials
#: (pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts, generateKubeconfig, uses --profile).
DISABLE_LOGGING = """\
set -- --region "$REGION"
if [ -n "${PROFILE:-}" ]; then set -- "$@" --profile "$PROFILE"; fi
if ! update=$(aws eks update-cluster-config --name "$CLUSTER" --logging "$LOGGING_OFF" \\
    --query update.id --output text "$@" 2>&1); then
  case "$update" in
    *"(ResourceNotFoundException)"*) exit 0 ;;
    *"(InvalidParameterException)"*"No changes needed"*) exit 0 ;;
  esac
  echo "disabling control-plane logging of $CLUSTER: $update" >&2
  exit 1
fi
tries=0
while [ "$tries" -lt 80 ]; do
  status=$(aws eks describe-update --name "$CLUSTER" --update-id "$update" \\
    --query update.status --output text "$@") || exit 1
  case "$status" in
    Successful) exit 0 ;;
    Failed|Cancelled) echo "disabling control-plane logging of $CLUSTER: $status" >&2; exit 1 ;;
  esac
  tries=$((tries + 1))
  sleep 15
done
echo "disabling control-plane logging of $CLUSTER: not done after 20 minutes" >&2
exit 1
"""


@dataclass(frozen=True, kw_only=True)
class GpuClusterArgs:
    """Inputs of :class:`GpuCluster`."""

    #: Name of the EKS cluster. Default: the component's resource name.
    cluster_name: str | None = None
    #: Kubernetes minor version; must be in EKS standard support. Default ``None``: the
    #: newest EKS lists in standard support when the cluster is created (``pulumi up`` asks
    #: EKS; the offline plan uses :mod:`components.catalog`), kept afterwards: to upgrade,
    #: set it.
    kubernetes_version: str | None = None
    #: What EKS does when the version's standard support ends: ``"STANDARD"`` (upgrade the
    #: cluster) or ``"EXTENDED"`` (keep it, at 6x the hourly price). Default ``"STANDARD"``.
    support_type: str = "STANDARD"
    #: VPC for the cluster. Default ``None``: the account's default VPC in the region.
    vpc_id: pulumi.Input[str] | None = None
    #: Subnets (two or more AZs) for the control plane ENIs and the nodes. Default ``None``:
    #: the default VPC's default subnets in the AZs that offer ``gpu_instance_type``.
    subnet_ids: pulumi.Input[Sequence[str]] | None = None
    #: Instance type whose AZ offerings pick the default subnets. Default ``"g4dn.xlarge"``.
    gpu_instance_type: str = "g4dn.xlarge"
    #: CIDR blocks that may reach the public API endpoint; only with
    #: ``endpoint_public_access``. Default ``None``: ``["0.0.0.0/0"]`` when the endpoint is
    #: public (warned about: narrow it to your own address).
    public_access_cidrs: Sequence[str] | None = None
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
    #: AWS CLI profile for the kubeconfig's ``aws eks get-token`` (the stack's
    #: ``aws:profile``). Default ``None``: the default credential chain.
    aws_profile: str | None = None
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
        if self.kubernetes_version is not None:
            kubernetes_versions.check_calendar(
                self.kubernetes_version, self.today or catalog.today()
            )
        validation.one_of("supportType", self.support_type, SUPPORT_TYPES)
        validation.one_of(
            "gpuInstanceType", self.gpu_instance_type, catalog.G4DN, "is not a g4dn type we support"
        )
        validation.one_of("authentication_mode", self.authentication_mode, AUTHENTICATION_MODES)
        validation.boolean("endpoint_public_access", self.endpoint_public_access)
        validation.boolean("endpoint_private_access", self.endpoint_private_access)
        if not (self.endpoint_public_access or self.endpoint_private_access):
            raise ConfigError("endpoint_public_access and endpoint_private_access are both off")
        if self.public_access_cidrs is not None:
            validation.cidrs("publicAccessCidrs", self.public_access_cidrs)
            # pulumi-eks refuses them then (pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts:
            # "`publicAccessCidrs` can only be set when `endpointPublicAccess` is true").
            if not self.endpoint_public_access:
                raise ConfigError(
                    f"publicAccessCidrs {list(self.public_access_cidrs)} is set but the public "
                    "endpoint is off (endpoint_public_access false): there is nothing for them "
                    "to open. Remove publicAccessCidrs, or turn the public endpoint on"
                )
        validation.integer("log_retention_days", self.log_retention_days, 1)
        validation.one_of("log_retention_days", self.log_retention_days, catalog.LOG_RETENTION_DAYS)
        for i, log_type in enumerate(self.cluster_log_types):
            validation.one_of(f"cluster_log_types[{i}]", log_type, catalog.EKS_LOG_TYPES)
        validation.string_map("tags", self.tags)
        if self.aws_profile is not None:
            validation.matches("aws:profile", self.aws_profile, r"\S+", "an AWS CLI profile name")
        given = self.subnet_ids
        if (
            given is not None
            and validation.is_known(given)
            and (isinstance(given, str) or not isinstance(given, Sequence) or len(given) < 2)
        ):
            raise ConfigError(f"subnet_ids needs two or more subnets, got {self.subnet_ids!r}")

    def public_cidrs(self) -> list[str]:
        """The CIDRs that open the public endpoint: none when it is private.

        Through validation.cidrs again (validate() already checked them) for its canonical
        form: ``10.0.0.0/255.0.0.0`` or a bare ``10.0.0.7`` become ``10.0.0.0/8`` and
        ``10.0.0.7/32``, the CIDR notation EKS takes.
        """
        if not self.endpoint_public_access:
            return []
        return validation.cidrs(
            "publicAccessCidrs", self.public_access_cidrs or [OPEN_TO_THE_INTERNET]
        )


def keep_created_version(
    args: pulumi.ResourceTransformArgs,
) -> pulumi.ResourceTransformResult | None:
    """Ignore later changes of the defaulted version on pulumi-eks's aws.eks.Cluster child.

    Otherwise each `pulumi up` re-resolves "the newest in standard support", and once EKS
    lists a newer one an unrelated `up` starts an irreversible in-place control-plane
    upgrade. ignoreChanges still uses the value at create (Pulumi docs, resource option
    ignoreChanges). ``transforms``, unlike ``transformations``, reach the children of
    packaged components such as pulumi-eks's (Pulumi docs, resource options transforms and
    transformations); pulumi-eks names that child ``<name>-eksCluster``
    (nodejs/eks/cluster/cluster.ts, ``new aws.eks.Cluster``).
    """
    if args.type_ != "aws:eks/cluster:Cluster":
        return None
    keep = pulumi.ResourceOptions(ignore_changes=["version"])
    return pulumi.ResourceTransformResult(args.props, pulumi.ResourceOptions.merge(args.opts, keep))


def with_profile(profile: str, kubeconfig_json: str) -> str:
    """The kubeconfig with ``--profile`` on its ``aws eks get-token``, as pulumi-eks writes it
    for its own provider (generateKubeconfig(..., includeProfile=true) appends
    ``--profile <name>``; pulumi/pulumi-eks nodejs/eks/cluster/cluster.ts). The
    ``kubeconfigJson`` it exports has none, so a profile would reach the AWS provider but
    not ours nor ``verify``."""
    config = json.loads(kubeconfig_json)
    for user in config["users"]:
        user["user"]["exec"]["args"] += ["--profile", profile]
    return json.dumps(config)


class GpuCluster(pulumi.ComponentResource):
    """An EKS cluster with no default node group, API access entries and encrypted secrets.

    ``provider`` is the Kubernetes provider built from its kubeconfig: pass it to every
    Kubernetes object so nothing falls back to an ambient kubeconfig.
    """

    #: Derived from the logging-off command (when logging is on), so that node groups, which
    #: take it, are deleted before logging goes off (``_logging_off_before_delete``).
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    #: The Kubernetes version asked for, or else the newest EKS supports now (the
    #: cluster keeps the one it was created with: ``keep_created_version``).
    kubernetes_version: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[Sequence[str]]
    provider: k8s.Provider
    #: The ``eks-pod-identity-agent`` add-on: Pod Identity associations depend on it.
    pod_identity_agent: aws.eks.Addon

    def __init__(
        self, name: str, args: GpuClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args.validate()
        public_cidrs = args.public_cidrs()
        if OPEN_TO_THE_INTERNET in public_cidrs:
            pulumi.log.warn(
                "publicAccessCidrs includes 0.0.0.0/0: the cluster's API endpoint is reachable "
                "from the whole internet. Set eks-gpu-sharing:publicAccessCidrs to your own "
                'address (e.g. ["<your address>/32"]).'
            )
        super().__init__("eks-gpu-sharing:index:GpuCluster", name, None, opts)
        child = child_options(self, opts)
        cluster_name = args.cluster_name or name

        vpc_id = args.vpc_id or aws.ec2.get_vpc_output(default=True, opts=self._invoke()).id
        subnet_ids = args.subnet_ids or self._default_subnets(vpc_id, args.gpu_instance_type)
        version = aws.eks.get_cluster_versions_output(
            cluster_type="eks", version_status="STANDARD_SUPPORT", opts=self._invoke()
        ).cluster_versions.apply(
            functools.partial(kubernetes_versions.newest_supported, args.kubernetes_version)
        )

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
            version=version,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=args.support_type),
            vpc_id=vpc_id,
            subnet_ids=subnet_ids,
            skip_default_node_group=True,
            authentication_mode=eks.AuthenticationMode(args.authentication_mode),
            endpoint_private_access=args.endpoint_private_access,
            endpoint_public_access=args.endpoint_public_access,
            public_access_cidrs=public_cidrs or None,
            enabled_cluster_log_types=list(args.cluster_log_types),
            encryption_config_key_arn=kms_key_arn,
            create_oidc_provider=False,
            # pulumi-eks takes aws:profile itself, but only when AWS_PROFILE is unset
            # (nodejs/eks/cluster/cluster.ts, just before createCore): passing it pins the
            # stack's profile over the environment of whoever runs `up`, and serves
            # library users who set aws_profile without aws:profile.
            provider_credential_opts=(
                eks.KubeconfigOptionsArgs(profile_name=args.aws_profile)
                if args.aws_profile
                else None
            ),
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[log_group],
                    transforms=[] if args.kubernetes_version else [keep_created_version],
                ),
            ),
        )
        kubeconfig = self._eks.kubeconfig_json
        if args.aws_profile:
            kubeconfig = kubeconfig.apply(functools.partial(with_profile, args.aws_profile))
        # Derived from a cluster output so that whatever uses the name waits for the cluster.
        self.cluster_name = pulumi.Output.unsecret(kubeconfig.apply(lambda _: cluster_name))
        if args.cluster_log_types:
            logging_off = self._logging_off_before_delete(name, args, child)
            self.cluster_name = pulumi.Output.all(self.cluster_name, logging_off.urn).apply(
                operator.itemgetter(0)
            )
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.kubernetes_version = version
        self.vpc_id = pulumi.Output.from_input(vpc_id)
        self.subnet_ids = pulumi.Output.from_input(subnet_ids)
        # No delete_unreachable: with it a `refresh` from outside publicAccessCidrs would drop
        # every Kubernetes object from state. To tear down after the cluster is already gone,
        # run `PULUMI_K8S_DELETE_UNREACHABLE=true pulumi destroy` (docs/security.md).
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            enable_config_map_mutable=True,  # data changes update in place (docs/security.md)
            enable_server_side_apply=True,
            opts=child,
        )
        self.pod_identity_agent = self._pod_identity_agent(name, child)
        self.register_outputs(
            {
                "clusterName": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "kubernetesVersion": self.kubernetes_version,
                "vpcId": self.vpc_id,
                "subnetIds": self.subnet_ids,
            }
        )

    def _logging_off_before_delete(
        self, name: str, args: GpuClusterArgs, child: pulumi.ResourceOptions
    ) -> command.local.Command:
        """Turn logging off before `destroy` deletes the cluster (DISABLE_LOGGING says why).

        Its ``CLUSTER`` input comes from a cluster output, so it depends on the cluster and
        Pulumi deletes it, running its delete command, before the cluster. Node groups depend
        on it (through ``cluster_name``), so it runs after they are gone: whether EKS refuses
        a node-group delete during a logging update (ResourceInUseException) is undocumented.
        """
        logging_off = {
            "clusterLogging": [{"types": list(args.cluster_log_types), "enabled": False}]
        }
        environment: dict[str, pulumi.Input[str]] = {
            "CLUSTER": self.cluster_name,
            "REGION": self._region(),
            "LOGGING_OFF": json.dumps(logging_off),
        }
        if args.aws_profile:
            environment["PROFILE"] = args.aws_profile
        return command.local.Command(
            f"{name}-logging-off-before-delete",
            delete=DISABLE_LOGGING,
            interpreter=["/bin/sh", "-c"],
            environment=environment,
            opts=child,
        )

    def _pod_identity_agent(self, name: str, child: pulumi.ResourceOptions) -> aws.eks.Addon:
        """The agent that hands pods the credentials of their PodIdentityAssociation's role
        (EKS docs, pod-id-agent-setup.html): no node-role permissions, no static keys."""
        return aws.eks.Addon(
            f"{name}-pod-identity-agent",
            cluster_name=self.cluster_name,
            addon_name="eks-pod-identity-agent",
            opts=child,
        )

    def _invoke(self) -> pulumi.InvokeOutputOptions:
        return pulumi.InvokeOutputOptions(parent=self)

    def _region(self) -> pulumi.Output[str]:
        return aws.get_region_output(opts=self._invoke()).region

    def _default_subnets(self, vpc_id: pulumi.Input[str], instance_type: str) -> pulumi.Output:
        """Default subnets only in AZs that offer the GPU type (g4dn is not in every AZ) and
        that EKS accepts for a cluster (EKS_UNSUPPORTED_AZ_IDS)."""
        offerings = aws.ec2.get_instance_type_offerings_output(
            location_type="availability-zone",
            filters=[{"name": "instance-type", "values": [instance_type]}],
            opts=self._invoke(),
        )
        zones = aws.get_availability_zones_output(state="available", opts=self._invoke())

        def usable_azs(answers: list[Any]) -> list[str]:
            offered, names, zone_ids, region = answers
            refused = EKS_UNSUPPORTED_AZ_IDS.get(region, ())
            zone_id = dict(zip(names, zone_ids, strict=True))
            return [az for az in offered if zone_id.get(az) not in refused]

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
                    f"{instance_type} and that EKS accepts; EKS needs two AZs. Give "
                    "subnet_ids, or pick another gpuInstanceType or region"
                )
            return sorted(ids)

        azs = pulumi.Output.all(
            offerings.locations, zones.names, zones.zone_ids, self._region()
        ).apply(usable_azs)
        ids: pulumi.Output[list[str]] = pulumi.Output.all(vpc_id, azs).apply(subnets_in)
        return ids.apply(two_or_more)
