using ContrastSeg.Losses;
using ContrastSeg.Tests.Support;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace ContrastSeg.Tests.Losses;

/// <summary>ReCo's regional contrast: the loss of a given sample against a plain computation, and what the sampler draws.</summary>
public class RegionalContrastTests
{
    public RegionalContrastTests() => TorchFixture.Init();

    private static double[] Unit(double[] v)
    {
        var n = Math.Sqrt(v.Sum(a => a * a));
        return v.Select(a => a / n).ToArray();
    }

    private static double Dot(double[] a, double[] b) => a.Zip(b, (p, q) => p * q).Sum();

    [Fact]
    public void The_loss_of_a_sample_is_cross_entropy_against_the_class_mean_and_its_gradient_flows_to_the_queries_only()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(0, CPU);
        gen.manual_seed(2);
        var x = randn(new long[] { 9, 4 }, generator: gen);
        var labels = tensor(new long[] { 0, 0, 0, 1, 1, 2, 2, 2, 2 });
        // Class 0: queries 1, 1, 2 with negatives from classes 1 and 2; class 1: none (no hard pixel); class 2: queries 5, 8.
        var sample = new RegionalSample([0, 1, 2],
            [tensor(new long[] { 1, 1, 2 }), null, tensor(new long[] { 5, 8 })],
            [tensor(new long[] { 3, 6, 4, 7, 8, 3 }).reshape(3, 2), null, tensor(new long[] { 0, 4, 2, 3 }).reshape(2, 2)]);
        const double tau = 0.3;
        var input = x.clone().requires_grad_(true);
        var value = RegionalContrast.Loss(input, labels, sample, tau);
        value.backward();

        // Plain computation: cosine similarities, the class mean as key 0, cross-entropy with target 0, per-class means, / 3 classes.
        var rows = Enumerable.Range(0, 9).Select(i => x[i].to_type(ScalarType.Float64).data<double>().ToArray()).ToArray();
        var y = labels.data<long>().ToArray();
        double[] Mean(long c) => Enumerable.Range(0, 4).Select(d => Enumerable.Range(0, 9).Where(i => y[i] == c).Average(i => rows[i][d])).ToArray();
        double ClassLoss(long[] queries, long[,] negatives, long c)
        {
            var total = 0.0;
            for (var q = 0; q < queries.Length; q++)
            {
                var query = Unit(rows[queries[q]]);
                var logits = new List<double> { Dot(query, Unit(Mean(c))) / tau };
                for (var k = 0; k < negatives.GetLength(1); k++) logits.Add(Dot(query, Unit(rows[negatives[q, k]])) / tau);
                var max = logits.Max();
                total += Math.Log(logits.Sum(l => Math.Exp(l - max))) + max - logits[0];
            }
            return total / queries.Length;
        }
        var expected = (ClassLoss([1, 1, 2], new long[,] { { 3, 6 }, { 4, 7 }, { 8, 3 } }, 0) + ClassLoss([5, 8], new long[,] { { 0, 4 }, { 2, 3 } }, 2)) / 3;
        Assert.Equal(expected, value.item<float>(), 1e-5);

        // Gradient: the same computation in float64 autograd, keys (means, negatives) detached as in ReCo.
        var z = x.to_type(ScalarType.Float64).requires_grad_(true);
        Tensor Cos(Tensor a, Tensor b) => (a * b).sum(-1) / (a.norm(-1) * b.norm(-1));
        Tensor Term(long[] queries, long[,] negatives, long c)
        {
            var keysMean = z.detach().index_select(0, tensor(Enumerable.Range(0, 9).Where(i => y[i] == c).Select(i => (long)i).ToArray())).mean(new long[] { 0 });
            var terms = new List<Tensor>();
            for (var q = 0; q < queries.Length; q++)
            {
                var query = z[queries[q]];
                var logits = new List<Tensor> { Cos(query, keysMean) / tau };
                for (var k = 0; k < negatives.GetLength(1); k++) logits.Add(Cos(query, z.detach()[negatives[q, k]]) / tau);
                var l = stack(logits);
                terms.Add(l.logsumexp(0) - l[0]);
            }
            return stack(terms).mean();
        }
        var reference = (Term([1, 1, 2], new long[,] { { 3, 6 }, { 4, 7 }, { 8, 3 } }, 0) + Term([5, 8], new long[,] { { 0, 4 }, { 2, 3 } }, 2)) / 3;
        reference.backward();
        TensorAssert.Close(z.grad!, input.grad!, 1e-5, "gradient");
        var queried = new[] { 1, 2, 5, 8 };
        for (var i = 0; i < 9; i++)
            Assert.Equal(queried.Contains(i), input.grad![i].abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Queries_come_from_hard_pixels_and_negatives_from_other_classes_in_proportion_to_class_mean_similarity()
    {
        using var scope = NewDisposeScope();
        // Three classes whose means point along e1, e1 + e2 (close to class 0) and -e1 (far from it).
        var rows = new List<float[]>();
        var labels = new List<long>();
        var probability = new List<float>();
        for (var i = 0; i < 30; i++)
        {
            var c = i % 3;
            rows.Add(c switch { 0 => [1f, 0.01f * i, 0f], 1 => [1f, 1f, 0.01f * i], _ => [-1f, 0.01f * i, 0f] });
            labels.Add(c);
            probability.Add(i < 15 ? 0.5f : 0.99f); // only the first 15 pixels are hard at threshold 0.97
        }
        var x = tensor(rows.SelectMany(r => r).ToArray()).reshape(30, 3);
        var y = tensor(labels.ToArray());
        var gen = new Generator(0, CPU);
        gen.manual_seed(8);
        const int queries = 50, negatives = 400;
        const double tau = 0.5;
        var sample = RegionalContrast.Sample(x, y, tensor(probability.ToArray()), 0.97, queries, negatives, tau, gen);
        Assert.Equal(new long[] { 0, 1, 2 }, sample.Classes);
        var means = Enumerable.Range(0, 3).Select(c => Unit(Enumerable.Range(0, 3).Select(d => (double)rows.Where((_, i) => labels[i] == c).Average(r => r[d])).ToArray())).ToArray();
        for (var c = 0; c < 3; c++)
        {
            var q = sample.Queries[c]!.data<long>().ToArray();
            Assert.Equal(queries, q.Length);
            Assert.All(q, i => Assert.True(labels[(int)i] == c && i < 15, $"query {i} of class {c} is not a hard pixel of it"));
            var n = sample.Negatives[c]!;
            Assert.Equal(new long[] { queries, negatives }, n.shape);
            var drawn = n.data<long>().ToArray().Select(i => labels[(int)i]).ToArray();
            Assert.DoesNotContain((long)c, drawn);
            // Class frequencies against softmax(cos(mean_c, mean_j) / tau) over the other classes.
            var others = Enumerable.Range(0, 3).Where(j => j != c).ToArray();
            var weights = others.Select(j => Math.Exp(Dot(means[c], means[j]) / tau)).ToArray();
            for (var k = 0; k < others.Length; k++)
            {
                var share = drawn.Count(l => l == others[k]) / (double)drawn.Length;
                Assert.True(Math.Abs(share - weights[k] / weights.Sum()) < 0.01, $"class {c}: negatives of class {others[k]}: {share:F3} vs {weights[k] / weights.Sum():F3}");
            }
        }

        // Without probabilities (or threshold 0) every pixel may be a query; one class alone gives no sample and a zero loss.
        var all = RegionalContrast.Sample(x, y, null, 0.97, 200, 1, tau, gen);
        Assert.Contains(all.Queries[0]!.data<long>().ToArray(), i => i >= 15);
        var single = RegionalContrast.Sample(x, zeros(30, ScalarType.Int64), null, 0, 4, 4, tau, gen);
        var input = x.clone().requires_grad_(true);
        var loss = RegionalContrast.Loss(input, zeros(30, ScalarType.Int64), single, tau);
        loss.backward();
        Assert.Equal(0f, loss.item<float>());
        TensorAssert.Finite(input.grad!, "gradient of a one-class batch");
    }

    [Fact]
    public void The_regional_form_of_the_loss_pools_the_batch_and_reads_the_own_label_probability_from_the_logits()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(0, CPU);
        gen.manual_seed(6);
        var e = randn(new long[] { 2, 4, 3, 3 }, generator: gen);
        var labels = randint(0, 3, new long[] { 2, 3, 3 }, generator: gen);
        labels[0, 0, 0] = tensor(255L);
        var logits = randn(new long[] { 2, 3, 3, 3 }, generator: gen);
        using var loss = new PixelContrastiveLoss(new PixelContrastiveOptions
        {
            Form = ContrastiveForm.Regional, AnchorsPerClass = 5, RegionalNegatives = 6, HardQueryThreshold = 0.6, Temperature = 0.5,
            ResizeTo = null, NormalizeEmbeddings = false, Seed = 21,
        });
        var value = loss.Forward(e, labels, null, null, logits, null).item<float>();

        // By hand: the valid pixels in batch order, their own-label probability, the same draws.
        var x = e.flatten(2).transpose(1, 2).reshape(-1, 4);
        var y = labels.reshape(-1);
        var keep = y.ne(255).nonzero().squeeze(1);
        var probability = logits.flatten(2).transpose(1, 2).reshape(-1, 3).softmax(1);
        var own = probability.index_select(0, keep).gather(1, y.index_select(0, keep).unsqueeze(1)).squeeze(1);
        var replay = new Generator(0, CPU);
        replay.manual_seed(21);
        var sample = RegionalContrast.Sample(x.index_select(0, keep), y.index_select(0, keep), own, 0.6, 5, 6, 0.5, replay);
        var expected = RegionalContrast.Loss(x.index_select(0, keep), y.index_select(0, keep), sample, 0.5).item<float>();
        Assert.Equal(expected, value);
        Assert.True(value > 0);
        Assert.Throws<ArgumentException>(() => loss.Forward(e, labels));
    }
}
