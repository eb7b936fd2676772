// The Python components from TypeScript. Not run by the tests (they need the Pulumi CLI,
// Node.js and AWS); tests/test_provider_schema.py checks the schema this SDK is made from.
//
//   cd examples/typescript
//   npm install
//   pulumi package add ../../provider   # generates sdks/eks-gpu-sharing and adds it here
//   pulumi stack init dev
//   pulumi config set aws:region us-west-2
//   pulumi config set --path 'publicAccessCidrs[0]' 203.0.113.7/32   # your address
//   pulumi up
import * as pulumi from "@pulumi/pulumi";
import * as gpu from "@pulumi/eks-gpu-sharing";

const config = new pulumi.Config();

// A whole cluster: one g4dn.xlarge whose T4 is advertised as 4 units, and 4 pods using them.
const sharing = new gpu.GpuSharing("gpu", {
    clusterName: `gpu-sharing-${pulumi.getStack()}`,
    publicAccessCidrs: config.requireObject<string[]>("publicAccessCidrs"),
    sharing: "time-slicing",
    replicas: 4,
    verificationPods: 4,
});

// Or, with `pulumi config set bringYourOwnCluster true` and a secret `kubeconfig`, also put
// the device plugin and the probe pods on a cluster made elsewhere.
if (config.getBoolean("bringYourOwnCluster")) {
    const kubeconfig = config.requireSecret("kubeconfig");
    const plugin = new gpu.NvidiaDevicePlugin("byo", { kubeconfig, sharing: "time-slicing", replicas: 4 });
    new gpu.VerificationWorkload("byo-verification", { kubeconfig, pods: 4 }, { dependsOn: [plugin] });
}

export const clusterName = sharing.clusterName;
export const kubeconfig = pulumi.secret(sharing.kubeconfig);
export const gpuSlicesPerNode = sharing.gpuSlicesPerNode;
