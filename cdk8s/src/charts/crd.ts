import { loadExperimentCrd } from '@loadlab/operator/crd';
import { Chart } from 'cdk8s';
import type { Construct } from 'constructs';
import { add } from '../objects.js';

/** Our CRD, generated from the one LoadExperiment schema (k6-operator's and prometheus-operator's come from their releases). */
export class CrdChart extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    add(this, loadExperimentCrd());
  }
}
