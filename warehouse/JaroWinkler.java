package cip.spark;

import org.apache.spark.sql.api.java.UDF2;

/**
 * DuckDB's jaro_winkler_similarity(a, b) as a Spark SQL function (warehouse/spark_udf.py).
 *
 * <p>The same function, step for step: strings are compared as Unicode code points; an empty
 * string scores 0 and NULL gives NULL; characters match within max(len)/2 - 1 positions, each
 * character of b taking the first unmatched equal character of a; transpositions are the
 * matched pairs out of order, halved by integer division; jaro = (m/|a| + m/|b| + (m - t)/m) / 3,
 * summed in that order; above 0.7, a common prefix of up to 4 adds prefix * 0.1 * (1 - jaro), the
 * multiply-add fused (rounded once) as DuckDB's compiled code does: without it 0.5% of pairs
 * differ in the last bit, which can put a pair on the other side of a threshold.
 */
public final class JaroWinkler implements UDF2<String, String, Double> {
    private static final long serialVersionUID = 1L;

    @Override
    public Double call(String a, String b) {
        if (a == null || b == null) {
            return null;
        }
        return similarity(codePoints(a), codePoints(b));
    }

    static double similarity(int[] a, int[] b) {
        double jaro = jaro(a, b);
        if (jaro <= 0.7) {
            return jaro;
        }
        int most = Math.min(4, Math.min(a.length, b.length));
        int prefix = 0;
        while (prefix < most && a[prefix] == b[prefix]) {
            prefix++;
        }
        return Math.fma(prefix * 0.1, 1.0 - jaro, jaro); // one rounding, as DuckDB's build
    }

    static double jaro(int[] a, int[] b) {
        if (a.length == 0 || b.length == 0) {
            return 0.0;
        }
        int window = Math.max(Math.max(a.length, b.length) / 2 - 1, 0);
        boolean[] aMatched = new boolean[a.length];
        boolean[] bMatched = new boolean[b.length];
        int matches = 0;
        for (int j = 0; j < b.length; j++) {
            int last = Math.min(a.length - 1, j + window);
            for (int i = Math.max(0, j - window); i <= last; i++) {
                if (!aMatched[i] && a[i] == b[j]) {
                    aMatched[i] = true;
                    bMatched[j] = true;
                    matches++;
                    break;
                }
            }
        }
        if (matches == 0) {
            return 0.0;
        }
        int outOfOrder = 0;
        int i = 0;
        for (int j = 0; j < b.length; j++) {
            if (bMatched[j]) {
                while (!aMatched[i]) {
                    i++;
                }
                if (a[i] != b[j]) {
                    outOfOrder++;
                }
                i++;
            }
        }
        int transpositions = outOfOrder / 2;
        double sum = (double) matches / a.length;
        sum += (double) matches / b.length;
        sum += (double) (matches - transpositions) / matches;
        return sum / 3.0;
    }

    private static int[] codePoints(String s) {
        int n = s.length();
        int[] points = new int[s.codePointCount(0, n)];
        for (int i = 0, k = 0; i < n; k++) {
            int c = s.codePointAt(i);
            points[k] = c;
            i += Character.charCount(c);
        }
        return points;
    }
}
